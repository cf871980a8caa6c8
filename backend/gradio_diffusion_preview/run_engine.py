"""The run engine: one driver from a request to a run's states, for every way of starting one.

    handle = ENGINE.open(owner)                      # registered: cancel works from here on
    for state in ENGINE.states(RunSpec("diffusers", {"prompt": "..."}), handle):
        ...

The driver validates the request (under a ``Policy``, a visitor's request: the catalogue entry,
its limits, then the backend's own rules), admits it (a ticket in its backend's fair line, under
a policy), waits in line (queued states with the true position), runs the backend on its own
thread (``BackendRunner``: latest-wins steps, previews encoded off the generation thread) and,
under a policy, scrubs each state (the model by its catalogue id, no server path). Whatever
happens, including a backend that raises or a consumer that stops iterating, the driver never
raises and its ``finally`` cancels the backend, frees the slot, leaves the line and closes the
handle.

``stream``, ``astream`` and ``compare`` are thin adapters over it: one handle, one handle on a
thread, N handles merged. The engine does not import Gradio: the adapters pass in the owner
(the Gradio session) and turn a failed run into ``gradio.Error``. The clock and the intervals
between heartbeat and queued states are the engine's settings, so tests can drive time-based
behaviour without waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backend import Backend
from .events import is_public_job_url
from .generation_info import params_for_request
from .input_frame import shown_input
from .plugins import Registry, UnknownBackendError, get_registry
from .preview_encoding import DEFAULT_MAX_SIDE
from .progress import RUN_DURATIONS, ProgressClock
from .request import GenerationRequest, RunRefused, build_request, validate_request
from .run_handles import RUNS, RunHandle, RunRegistry
from .run_progress import RunProgress
from .run_state import RunCapabilities, RunState
from .runner import BackendRunner

if TYPE_CHECKING:
    from .fair_queue import RunGroup, Ticket
    from .policy import CatalogueEntry, Policy

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = 0.05
"""Seconds between two preview frames at most (latest wins in between)."""
HEARTBEAT_SECONDS = 1.0
"""Seconds between states while a run reports nothing (elapsed time, a waiting run's ETA)."""
WAIT_TICK_SECONDS = 1.0
"""Seconds between queued states while a run waits for its turn."""
STOPPING = "Stopping…"
"""A cancelled run's message until its backend ends it (a service answering the cancel)."""
STOP_SECONDS = 1.0
ORPHAN_SECONDS = 30.0
"""How long a run's slot waits, after its backend's run ended, for a reader that may never
come (a server closed under its stream) before it is freed anyway."""
"""How long a run's end waits for its backend's thread (it stops within a step)."""


@dataclass(frozen=True)
class RunSpec:
    """What to run: a backend (registered id or instance) and the request's fields, with the
    policy a visitor's request runs under (None: anything goes), the plugin registry to look the
    backend up in (None: the process's), the ``RunGroup`` of a compare's runs, and the preview
    settings."""

    backend: str | Backend
    fields: Mapping[str, Any] = field(default_factory=dict)
    policy: Policy | None = None
    plugins: Registry | None = None
    group: RunGroup | None = None
    min_interval: float = DEFAULT_MIN_INTERVAL
    preview_max_side: int = DEFAULT_MAX_SIDE

    @property
    def backend_id(self) -> str:
        return self.backend if isinstance(self.backend, str) else self.backend.id


@dataclass
class _Admitted:
    """A request that passed validation (and the policy): what the driver runs."""

    backend: Backend
    request: GenerationRequest
    entry: CatalogueEntry | None = None
    ticket: Ticket | None = None
    expected: float | None = None
    orphan_timer: threading.Timer | None = None  # frees the slot if no reader ends the run


class RunEngine:
    """Drives runs from request to states (see the module docstring)."""

    def __init__(
        self,
        handles: RunRegistry = RUNS,
        *,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float = HEARTBEAT_SECONDS,
        wait_tick: float = WAIT_TICK_SECONDS,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        self.handles = handles
        self.clock = clock
        self.heartbeat, self.wait_tick, self.stop_seconds = heartbeat, wait_tick, stop_seconds

    def open(self, owner: str | None = None, event: str | None = None) -> RunHandle:
        """A new run of ``owner`` (a Gradio session), started by its event ``event``,
        registered until its states end."""
        return self.handles.open(owner, event)

    def states(self, spec: RunSpec, handle: RunHandle) -> Iterator[RunState]:
        """The run's states, from its first (queued, running or a refusal) to its last (done,
        error or cancelled). Never raises; the handle is closed when the states end."""
        admitted: _Admitted | None = None
        try:
            admitted = self._admit(spec, handle)
            if isinstance(admitted, RunState):
                yield admitted
                return
            policy = spec.policy
            waiting_since, waited = self.clock(), None
            for state in self._wait_turn(admitted, handle):
                waited = 0.0  # it waited: the time is taken when its turn comes
                yield self._shown(state, admitted, policy)
            if waited is not None:
                waited = self.clock() - waiting_since
            if not handle.enter("running"):
                yield self._shown(_cancelled(handle, admitted), admitted, policy)
                return
            for state in self._run(spec, admitted, handle, waited):
                yield self._shown(state, admitted, policy)
        finally:
            handle.control.cancel()  # the backend stops, if it still runs
            if isinstance(admitted, _Admitted) and admitted.ticket is not None:
                admitted.ticket.leave()  # frees the slot, or the place in line
                if admitted.orphan_timer is not None:
                    admitted.orphan_timer.cancel()  # its reader came: no thread left waiting
            self.handles.close(handle)

    # -- validate and admit ------------------------------------------------------------------

    def _admit(self, spec: RunSpec, handle: RunHandle) -> _Admitted | RunState:
        """The validated request and, under a policy, its ticket; or the refusal's state."""
        entry: CatalogueEntry | None = None
        policy, fields = spec.policy, dict(spec.fields)
        plugins = spec.plugins or get_registry()
        try:
            if policy is None:
                backend = (
                    plugins.get(spec.backend) if isinstance(spec.backend, str) else spec.backend
                )
                request = validate_request(build_request(backend, fields), backend)
                return _Admitted(backend, request)
            entry = policy.entry(spec.backend_id, fields.get("model"))
            backend = plugins.get(entry.backend)
            request = validate_request(
                policy.admit(entry, backend, fields), backend, policy.controls(entry, backend)
            )
            policy.check_limits(backend.id, request)  # the defaults filled in, too
            expected = RUN_DURATIONS.expected(backend.id, request.model, request.steps)
            ticket = policy.queue.join(
                backend.id, handle.owner, expected, spec.group, client=handle.client
            )
            return _Admitted(backend, request, entry, ticket, expected)
        except (RunRefused, UnknownBackendError) as error:
            message = str(error) if policy is None else policy.scrub(str(error), entry)
            return RunState(
                status="error",
                backend=spec.backend_id,
                model=entry.id if entry else None,
                message=message,
                reason=getattr(error, "reason", "invalid_request"),
                retry_after=getattr(error, "retry_after", None),
            )
        except Exception as error:  # a plugin's bug while its request was checked
            log.exception("backend %r raised while its request was checked", spec.backend_id)
            return RunState(
                status="error",
                backend=spec.backend_id,
                model=entry.id if entry else None,
                message=f"Backend '{spec.backend_id}' raised {type(error).__name__} while its "
                "request was checked. This is a bug in the backend; report it to its authors.",
                reason="backend_error",
            )

    # -- wait in line ------------------------------------------------------------------------

    def _wait_turn(self, admitted: _Admitted, handle: RunHandle) -> Iterator[RunState]:
        """Queued states, one per ``wait_tick``, until the run's turn comes (none if it starts
        at once) or it is cancelled (then the caller's ``enter("running")`` says so)."""
        ticket = admitted.ticket
        if ticket is None:
            return
        handle.ticket = ticket
        if not handle.enter("waiting"):
            return
        backend_id = admitted.backend.id
        clock = ProgressClock(self.clock)
        timeout = 0.0
        while not ticket.wait(timeout):
            if handle.control.cancelled or ticket.left:
                return
            timeout = self.wait_tick
            position, waiting = ticket.position, ticket.waiting
            # recent runs' typical length, read again each tick (runs end while this one waits)
            request = admitted.request
            expected = RUN_DURATIONS.expected(backend_id, request.model, request.steps)
            yield RunState(
                run_id=handle.id,
                status="queued",
                backend=backend_id,
                model=admitted.request.model,
                phase="queued",
                queue_position=position,
                queue_size=waiting,
                elapsed=clock.elapsed,
                eta=ticket.queue.wait_estimate(ticket, expected),
                message=f"Waiting for your turn: {position} of {waiting} in line.",
                capabilities=_run_capabilities(admitted),
            )

    # -- run ---------------------------------------------------------------------------------

    def _run(
        self, spec: RunSpec, admitted: _Admitted, handle: RunHandle, waited: float | None = None
    ) -> Iterator[RunState]:
        """The states of the admitted run, ended with reason ``timeout`` after the policy's
        time limit (if any); ``waited`` is the seconds it waited in this app's queue (its
        ``elapsed`` counts from here, or from when it leaves the service's queue)."""
        backend, request, control = admitted.backend, admitted.request, handle.control
        time_limit = spec.policy.limits.time_limit if spec.policy is not None else None
        state = RunState(
            run_id=handle.id,
            status="running",
            total_steps=request.steps or 0,
            backend=backend.id,
            model=request.model,
            width=request.width,
            height=request.height,
            seeds=[request.seed] if request.seed is not None else [],
            message="Starting…",
            waited=waited,
            capabilities=_run_capabilities(admitted),
            params=params_for_request(request, backend.id),
            input_image=shown_input(request),  # an edit's first frame, before any preview
        )
        progress = RunProgress(backend.id, request.model, spec.preview_max_side, self.clock, waited)
        runner = BackendRunner(
            backend.id,
            lambda: backend.generate(request, control),
            control,
            spec.min_interval,
            on_end=lambda: self._backend_ended(admitted, handle),
            confirms_cancel=backend.capabilities_for(request.model).cancel_confirms,
        )
        runner.start()
        try:
            yield state
            while True:
                event = runner.channel.get(timeout=self.heartbeat)
                if time_limit is not None and progress.total.elapsed > time_limit:
                    yield progress.timed_out(state, time_limit)
                    return
                if event is None and not runner.channel.closed:
                    state = progress.tick(state)
                elif event is None:
                    break
                else:
                    state = progress.apply(state, event)
                if state.status == "done" and admitted.ticket is not None:
                    admitted.ticket.ran_for = progress.clock.elapsed  # its slot's tail: the rest
                if control.cancelled and state.status == "running":
                    state = state.model_copy(update={"message": STOPPING})  # until it ends
                yield state
                if state.status in ("done", "error", "cancelled"):
                    return
            if state.status == "running":
                yield progress.ended_without_result(state, control)
        finally:
            control.cancel()
            runner.stop(timeout=self.stop_seconds)

    def _backend_ended(self, admitted: _Admitted, handle: RunHandle) -> None:
        """The backend's run is over (its last event waits to be read): it leaves the registry
        now, not only when its states are closed, which a consumer that went away may never do
        (a server closed while it streamed). Its slot stays held while its reader turns the
        last event into the final state (images saved and sent: the slot's tail), so a
        one-slot backend never shows two runs going; a reader that never comes frees it after
        ``ORPHAN_SECONDS`` (leaving is idempotent); a reader that comes cancels that timer."""
        if admitted.ticket is not None:
            timer = threading.Timer(ORPHAN_SECONDS, admitted.ticket.leave)
            timer.daemon = True
            admitted.orphan_timer = timer
            timer.start()
        self.handles.close(handle)

    # -- scrub -------------------------------------------------------------------------------

    @staticmethod
    def _shown(state: RunState, admitted: _Admitted, policy: Policy | None) -> RunState:
        """The state as a visitor sees it under a policy: the model by its catalogue id, no
        server path in its message or settings, no job link into the server's own network.
        Without a policy, the state itself."""
        entry = admitted.entry
        if policy is None or entry is None:
            return state
        update: dict[str, Any] = {"model": entry.id, "message": policy.scrub(state.message, entry)}
        if state.params is not None:  # the run's settings, labelling its images
            settings: dict[str, Any] = {"model": entry.id}
            if state.params.job_url and not is_public_job_url(state.params.job_url):
                settings["job_url"] = None  # a link into the server's own network
            update["params"] = state.params.model_copy(update=settings)
        return state.model_copy(update=update)


def _run_capabilities(admitted: _Admitted) -> RunCapabilities:
    """What the admitted run's backend can do for its model: what a UI may offer during it."""
    caps = admitted.backend.capabilities_for(admitted.request.model)
    return RunCapabilities(
        cancel=caps.cancel, finish_early=caps.finish_early, cancel_confirms=caps.cancel_confirms
    )


def _cancelled(handle: RunHandle, admitted: _Admitted) -> RunState:
    """The last state of a run cancelled before it started (while it waited in line)."""
    return RunState(
        run_id=handle.id,
        status="cancelled",
        backend=admitted.backend.id,
        model=admitted.request.model,
        message="Cancelled.",
    )


ENGINE = RunEngine()
"""The process's engine, over the process's registry of runs (``run_handles.RUNS``)."""
