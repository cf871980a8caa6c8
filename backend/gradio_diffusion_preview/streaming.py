"""The glue: run a backend and turn its events into a stream of ``RunState`` for a Gradio event.

    run = button.click(lambda p: stream("diffusers", model="...", prompt=p), prompt, preview)

``stream`` validates the request centrally, runs the backend on its own thread (so a slow browser
never slows generation), coalesces steps (latest wins, at most one frame per ``min_interval``),
encodes previews off the generation thread, and stops the backend when Gradio closes the
generator (cancel button, ``cancels=[...]``, ``gradio_client`` ``job.cancel()``, tab closed).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .backend import Backend
from .control import RunControl
from .events import Failed, Finished, GenerationEvent, Started, Status, Step
from .generation_info import params_finished, params_for_request, params_started
from .ownership import current_session
from .plugins import Registry, UnknownBackendError, get_registry
from .preview_encoding import DEFAULT_MAX_SIDE, InvalidPreview, encode_previews
from .progress import RUN_DURATIONS, ProgressClock
from .request import GenerationRequest, RunRefused, build_request, validate_request
from .runner import BackendRunner
from .state import RunState

if TYPE_CHECKING:
    from .policy import Policy

DEFAULT_MIN_INTERVAL = 0.05
HEARTBEAT_SECONDS = 1.0

_active: dict[str, tuple[RunControl, str | None]] = {}
_active_lock = threading.Lock()


def _control_of(run_id: str | None, session: str | None) -> RunControl | None:
    """The run's control; with ``session``, only if that Gradio session started the run."""
    with _active_lock:
        control, owner = _active.get(run_id or "", (None, None))
    if session is not None and owner != session:
        return None
    return control


def runs_of_session(session: str) -> list[str]:
    """The ids of the runs that Gradio session started and that are still running."""
    with _active_lock:
        return [run_id for run_id, (_, owner) in _active.items() if owner == session]


def finish_run(run_id: str | None, session: str | None = None) -> bool:
    """Ask a running run to finish now with its current estimate; False if it is not running
    (or, with ``session``, not that Gradio session's run: see ``ownership``)."""
    control = _control_of(run_id, session)
    if control is not None:
        control.finish_early()
    return control is not None


def cancel_run(run_id: str | None, session: str | None = None) -> bool:
    """Cancel a running run by id; False if it is not running (or, with ``session``, not that
    Gradio session's run)."""
    control = _control_of(run_id, session)
    if control is not None:
        control.cancel()
    return control is not None


def stream(
    backend: str | Backend,
    request: GenerationRequest | dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    preview_max_side: int = DEFAULT_MAX_SIDE,
    policy: Policy | None = None,
    **fields: Any,
) -> Iterator[RunState]:
    """Run ``request`` (or the request made of ``fields``) on ``backend`` and yield its states.

    ``backend`` is a registered id or a ``Backend`` instance. Bad input and failed runs end the
    stream with an ``error`` state whose message names the problem and the fix, and whose
    ``reason`` says what kind of failure it is. Iterated by Python code, the stream never
    raises; inside a Gradio event it then raises ``gradio.Error`` carrying the message and
    reason (see ``raise_failed``), so an API call ends as an error while the component keeps
    showing the failed run. With a ``policy`` (for a visitor's request in a public app) the
    request's ``model`` names a catalogue entry, and the policy's limits, fair queue and time
    limit apply (see ``policy``); without one, anything goes.
    """
    for state in _states(
        backend, request, registry, min_interval, preview_max_side, policy, fields
    ):
        yield state
        if state.status == "error":
            raise_failed(state)


def failure_text(state: RunState) -> str:
    """A failed run's message with its reason and when to retry, e.g. "Too many requests.
    (reason: rate_limited, retry after 30 s)": the text of the error an API call ends with."""
    details = [f"reason: {state.reason or 'backend_error'}"]
    if state.retry_after is not None:
        details.append(f"retry after {state.retry_after:g} s")
    return f"{state.message or 'The run failed.'} ({', '.join(details)})"


def raise_failed(state: RunState) -> None:
    """Inside a Gradio event, raise ``gradio.Error(failure_text(state))`` for a failed run's
    last state: Gradio then ends the event as an error (``gradio_client`` raises ``AppError``
    with that text, the REST stream sends an ``error`` event, ``.success()`` listeners do not
    run). The error is not shown as a notice, since the component shows the run in place.
    Outside a Gradio event (plain Python) it does nothing."""
    if current_session() is None:
        return
    import gradio

    raise gradio.Error(failure_text(state), visible=False, print_exception=False)


def _states(
    backend: str | Backend,
    request: GenerationRequest | dict[str, Any] | None,
    registry: Registry | None,
    min_interval: float,
    preview_max_side: int,
    policy: Policy | None,
    fields: dict[str, Any],
) -> Iterator[RunState]:
    if isinstance(request, GenerationRequest):
        request = request.model_dump()
    if policy is not None:
        from .guarded import stream_guarded

        yield from stream_guarded(
            backend if isinstance(backend, str) else backend.id,
            {**(request or {}), **fields},
            policy,
            registry or get_registry(),
            min_interval,
            preview_max_side,
        )
        return
    backend_id = backend if isinstance(backend, str) else backend.id
    try:
        backend_obj = (
            (registry or get_registry()).get(backend) if isinstance(backend, str) else backend
        )
        resolved = validate_request(
            build_request(backend_obj, {**(request or {}), **fields}), backend_obj
        )
    except RunRefused as error:
        yield RunState(
            status="error",
            backend=backend_id,
            message=str(error),
            reason=error.reason,
            retry_after=error.retry_after,
        )
        return
    except UnknownBackendError as error:
        yield RunState(
            status="error", backend=backend_id, message=str(error), reason="invalid_request"
        )
        return
    yield from _run(backend_obj, resolved, min_interval, preview_max_side, current_session())


def _run(
    backend: Backend,
    request: GenerationRequest,
    min_interval: float,
    preview_max_side: int,
    owner: str | None = None,
    time_limit: float | None = None,
) -> Iterator[RunState]:
    """The states of one validated run, owned by the Gradio session ``owner`` (if any) and
    ended with reason ``timeout`` after ``time_limit`` seconds (if given)."""
    run_id = uuid.uuid4().hex
    control = RunControl()
    with _active_lock:
        _active[run_id] = (control, owner)
    state = RunState(
        run_id=run_id,
        status="running",
        total_steps=request.steps or 0,
        backend=backend.id,
        model=request.model,
        width=request.width,
        height=request.height,
        seeds=[request.seed] if request.seed is not None else [],
        message="Starting…",
        params=params_for_request(request, backend.id),
    )
    run = _RunProgress(backend.id, request.model, preview_max_side)
    runner = BackendRunner(backend.id, backend.generate(request, control), control, min_interval)
    runner.start()
    try:
        yield state
        while True:
            event = runner.channel.get(timeout=HEARTBEAT_SECONDS)
            if time_limit is not None and run.clock.elapsed > time_limit:
                yield _timed_out(state, time_limit, run.clock)
                return
            if event is None and not runner.channel.closed:
                state = run.tick(state)
            elif event is None:
                break
            else:
                state = run.apply(state, event)
            yield state
            if state.status in ("done", "error"):
                return
        if state.status == "running":
            yield _ended_without_result(state, backend.id, control, run.clock)
    finally:
        control.cancel()
        with _active_lock:
            _active.pop(run_id, None)
        runner.stop(timeout=1.0)


def _timed_out(state: RunState, time_limit: float, clock: ProgressClock) -> RunState:
    return state.model_copy(
        update={
            "status": "error",
            "message": f"The run took longer than this app's limit of {time_limit:g} s and was "
            "stopped. Fix: ask for fewer steps, a smaller size or fewer images.",
            "reason": "timeout",
            "elapsed": clock.elapsed,
            "phase": None,
            "eta": None,
        }
    )


def _ended_without_result(
    state: RunState, backend_id: str, control: RunControl, clock: ProgressClock
) -> RunState:
    """The last state of a run whose backend stopped yielding without Finished or Failed."""
    if control.cancelled or control.finish_requested:
        status, message, reason = "cancelled", "Cancelled.", None
    else:
        status, reason = "error", "backend_error"
        message = (
            f"Backend '{backend_id}' stopped without a result or an error; "
            "report this to its authors."
        )
    return state.model_copy(
        update={
            "status": status,
            "message": message,
            "reason": reason,
            "elapsed": clock.elapsed,
            "phase": None,
        }
    )


PHASE_TEXT = {
    "queued": "Queued at the service…",
    "loading": "Loading the model…",
    "generating": "Generating…",
    "fetching": "Fetching the result…",
}


class _RunProgress:
    """Turns one run's events into its states: steps, waiting phases, ETAs, the end."""

    def __init__(self, backend_id: str, model: str | None, preview_max_side: int) -> None:
        self.backend_id, self.model = backend_id, model
        self.preview_max_side = preview_max_side
        self.clock = ProgressClock()

    def tick(self, state: RunState) -> RunState:
        """A heartbeat with no event: the elapsed time, and a waiting run's ETA counted down."""
        update: dict[str, Any] = {"elapsed": self.clock.elapsed}
        if state.phase is not None:
            update["eta"] = self._wait_eta()
        return state.model_copy(update=update)

    def _wait_eta(self) -> float | None:
        return self.clock.wait_eta(RUN_DURATIONS.expected(self.backend_id, self.model))

    def apply(self, state: RunState, event: GenerationEvent) -> RunState:
        clock = self.clock
        if isinstance(event, Started):
            return state.model_copy(
                update={
                    "total_steps": event.total_steps,
                    "model": event.model,
                    "seeds": list(event.seeds),
                    "width": event.width,
                    "height": event.height,
                    "message": None,
                    "elapsed": clock.elapsed,
                    "params": params_started(state.params, event),
                }
            )
        if isinstance(event, Status):
            clock.service_said(event.eta)
            return state.model_copy(
                update={
                    "phase": event.phase,
                    "message": event.message or PHASE_TEXT.get(event.phase),
                    "queue_position": event.position,
                    "queue_size": event.queue_size,
                    "elapsed": clock.elapsed,
                    "eta": self._wait_eta(),
                }
            )
        if isinstance(event, Step):
            clock.step(event.step)
            preview, previews = state.preview, state.previews
            if event.preview is not None:
                try:
                    preview, previews = encode_previews(event.preview, self.preview_max_side)
                except InvalidPreview as error:
                    return self._failed(
                        state,
                        Failed(
                            f"Backend '{self.backend_id}' sent a preview that is not an image at "
                            f"step {event.step}: {error}. This is a bug in the backend; report "
                            "it to its authors.",
                            "backend_error",
                        ),
                    )
            return state.model_copy(
                update={
                    "step": event.step,
                    "total_steps": event.total_steps,
                    "preview": preview,
                    "previews": previews,
                    "phase": None,
                    "queue_position": None,
                    "queue_size": None,
                    "elapsed": clock.elapsed,
                    "steps_per_second": clock.steps_per_second(),
                    "eta": clock.eta(event.total_steps),
                    "message": None,
                }
            )
        if isinstance(event, Finished):
            if not event.early:
                RUN_DURATIONS.record(self.backend_id, self.model, clock.elapsed)
            message = (
                f"Finished early at step {state.step} of {state.total_steps}."
                if event.early
                else None
            )
            return state.model_copy(
                update={
                    "status": "done",
                    "images": list(event.images),
                    "seeds": list(event.seeds),
                    # the final images replace the preview: it need not travel again in the
                    # event's last message, nor stay in Gradio's store of each session's value
                    "preview": None if event.images else state.preview,
                    "previews": [] if event.images else state.previews,
                    # a run that reported no steps (a service that only waits) claims none
                    "step": state.step if event.early or not state.step else state.total_steps,
                    "phase": None,
                    "queue_position": None,
                    "queue_size": None,
                    "eta": 0.0,
                    "elapsed": clock.elapsed,
                    "message": message,
                    "params": params_finished(state.params, event, state.step),
                }
            )
        if isinstance(event, Failed):
            return self._failed(state, event)
        raise TypeError(f"unknown event {event!r}")

    def _failed(self, state: RunState, event: Failed) -> RunState:
        return state.model_copy(
            update={
                "status": "error",
                "message": event.message,
                "reason": event.reason,
                "retry_after": event.retry_after,
                "phase": None,
                "elapsed": self.clock.elapsed,
                "eta": None,
            }
        )
