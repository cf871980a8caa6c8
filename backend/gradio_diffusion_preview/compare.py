"""Compare: one request run on several models at once, each run's states streamed side by side.

    for states in compare(policy, ["shapes", "shapes-dpm"], prompt="a red circle", seed=7):
        ...  # a tuple with the latest RunState of every run, whenever one of them changes

``stream_together`` is the run engine's adapter for N runs (``run_engine``): it opens one handle
per run, all owned by the caller's Gradio session (``ownership``), drives each on a thread of its
own (under the policy's catalogue, limits, fair queue and time limit when given one) and yields a
tuple of their latest states whenever any changes. Each run is stopped by its id like any other
(``run_handles.cancel_run``, waiting or running), and "Stop all" is
``run_handles.stop_session_runs``. Closing the generator (Gradio's Stop or ``cancels=[...]``, a
client's cancel, a closed tab) cancels every run: each stops within a step, a run still waiting
in line leaves it at once, and the threads are joined before the generator returns. A run that
fails ends only its own place in the tuple.

Under a policy the runs join the backends' lines as one request of the session (a ``RunGroup``):
together they count as one of the session's ``runs_per_session``, so a compare of four models is
allowed where one run per visitor is, and no visitor holds more than one compare's worth of the
server. Runs on a backend with one slot (a local pipeline sharing this machine's CPU) take their
turns in the order of the models given, each showing its place in line; runs on backends with more
slots (remote services) run in parallel. ``compare`` stamps each finished run with the time it
took (waiting in line excluded) and its steps per second, in its state's message.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model_fields import accepted_fields
from .ownership import current_client, current_event, current_session
from .plugins import Registry, get_registry
from .preview_encoding import DEFAULT_MAX_SIDE
from .request import SEED_RANGE, RunRefused, random_seed
from .run_engine import DEFAULT_MIN_INTERVAL, ENGINE, RunSpec
from .run_handles import RunHandle
from .run_state import RunState
from .streaming import raise_failed

if TYPE_CHECKING:
    from .fair_queue import RunGroup
    from .policy import CatalogueEntry, Policy

MIN_MODELS = 2
MAX_MODELS = 4
START_SECONDS = 2.0
"""How long a run may take to take its place in line before the next run starts anyway."""
JOIN_SECONDS = 5.0
"""How long closing waits for each run's thread to end (a run stops within one step)."""


@dataclass(frozen=True)
class CompareRun:
    """One run of a compare: a backend id and the request's fields (as ``stream`` takes them)."""

    backend: str
    fields: Mapping[str, Any] = field(default_factory=dict)


class CompareRefused(RunRefused, ValueError):
    """The models asked for cannot be compared (too few, too many, not in the catalogue)."""


_DONE = object()


class _Worker:
    """One run's thread: puts ``(index, state)`` on ``updates`` until the run ends or ``stop``
    (the whole compare closed), then ``(index, _DONE)``."""

    def __init__(
        self,
        index: int,
        spec: RunSpec,
        handle: RunHandle,
        updates: queue.Queue,
        stop: threading.Event,
    ) -> None:
        self.index, self.spec, self.handle = index, spec, handle
        self.updates, self.stop = updates, stop
        self.placed = threading.Event()
        self.thread = threading.Thread(  # in the caller's context: its Gradio request
            target=contextvars.copy_context().run,
            args=(self._run,),
            name=f"compare-run-{index}",
            daemon=True,
        )

    def _run(self) -> None:
        states = ENGINE.states(self.spec, self.handle)
        try:
            for state in states:
                self.updates.put((self.index, state))
                self.placed.set()
                if self.stop.is_set():
                    break
        except Exception as error:  # the engine does not raise; a bug must still end the panel
            self.updates.put(
                (
                    self.index,
                    RunState(
                        status="error",
                        message=f"The run failed unexpectedly: {type(error).__name__}.",
                        reason="backend_error",
                    ),
                )
            )
        finally:
            states.close()  # the run's own cleanup: cancel, free its slot, leave the line
            ENGINE.handles.close(self.handle)  # also when the states never started
            self.placed.set()
            self.updates.put((self.index, _DONE))


def stream_together(
    runs: Sequence[CompareRun],
    *,
    policy: Policy | None = None,
    registry: Registry | None = None,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    preview_max_side: int = DEFAULT_MAX_SIDE,
) -> Iterator[tuple[RunState, ...]]:
    """Run ``runs`` at once and yield the tuple of their latest states whenever one changes.

    Iterated by Python code it never raises: a refused or failed run ends with its own
    ``error`` state. Under ``policy`` the runs are one request of the caller's session (see the
    module docstring); a session that already has a run going gets ``busy`` for every run.
    """
    registry = registry or get_registry()
    owner = current_session()  # the Gradio session owns every run of the compare
    event = current_event()  # ... and its event started them: a cancel of it stops them all
    latest = [
        RunState(status="queued", backend=run.backend, message="Waiting to start…") for run in runs
    ]
    group: RunGroup | None = None
    if policy is not None:
        try:
            client = current_client(policy.trusted_proxies)
            group = policy.queue.group(owner, max(1, len(runs)), client=client)
        except RunRefused as error:
            yield tuple(
                state.model_copy(
                    update={
                        "status": "error",
                        "message": str(error),
                        "reason": error.reason,
                        "retry_after": error.retry_after,
                    }
                )
                for state in latest
            )
            return
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()
    workers: list[_Worker] = []
    try:
        for index, run in enumerate(runs):
            spec = RunSpec(
                run.backend, run.fields, policy, registry, group, min_interval, preview_max_side
            )
            worker = _Worker(index, spec, ENGINE.open(owner, event), updates, stop)
            workers.append(worker)
            worker.thread.start()
            # in the order given: each run takes its place in line before the next one starts
            worker.placed.wait(START_SECONDS)
        running = len(workers)
        while running:
            changed = False
            for index, state in _drain(updates):
                if state is _DONE:
                    running -= 1
                else:
                    latest[index], changed = state, True
            if changed:
                yield tuple(latest)
    finally:
        stop.set()
        for worker in workers:
            worker.handle.cancel()  # in any phase: a backend stops within its current step
        for worker in workers:
            worker.thread.join(JOIN_SECONDS)
        if group is not None:
            group.close()


def _drain(updates: queue.Queue) -> Iterator[tuple[int, Any]]:
    """The next update (waiting for it), then every other one already there: one yield of the
    tuple carries every change that arrived together."""
    yield updates.get()
    while True:
        try:
            yield updates.get_nowait()
        except queue.Empty:
            return


# -- a compare of catalogue models ----------------------------------------------------------------


def chosen_entries(
    policy: Policy, models: Sequence[str] | None, max_models: int = MAX_MODELS
) -> list[CatalogueEntry]:
    """The catalogue entries named by ``models`` (ids or labels), 2 to ``max_models`` of them,
    each once; raises ``CompareRefused`` naming the problem and the fix."""
    ids = ", ".join(entry.id for entry in policy.catalogue)
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise CompareRefused(
            f"Choose the models to compare as a list of {MIN_MODELS} to {max_models} names, "
            f"not {type(models).__name__}; this app's models: {ids}."
        )
    entries: list[CatalogueEntry] = []
    for choice in models:
        entry = next((e for e in policy.catalogue if choice in (e.id, e.label)), None)
        if entry is None:
            shown = policy.scrub(str(choice)[:80])
            raise CompareRefused(f"'{shown}' is not one of this app's models; choose from: {ids}.")
        if entry not in entries:
            entries.append(entry)
    if not MIN_MODELS <= len(entries) <= max_models:
        raise CompareRefused(
            f"Choose {MIN_MODELS} to {max_models} different models to compare "
            f"({len(entries)} chosen)."
        )
    return entries


def compare(
    policy: Policy,
    models: Sequence[str],
    *,
    registry: Registry | None = None,
    max_models: int = MAX_MODELS,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    preview_max_side: int = DEFAULT_MAX_SIDE,
    **fields: Any,
) -> Iterator[tuple[RunState, ...]]:
    """Run one request (``fields``: prompt, negative_prompt, steps, width, height, seed, ...)
    on 2 to ``max_models`` catalogue entries of ``policy`` at once, with the same seed (a random
    one, shared, when none is given), and yield the tuple of their latest states.

    Each backend gets only what it supports (no negative prompt or seed where it has none).
    Each finished run's message says the time it took and its steps per second. Raises
    ``CompareRefused`` for a bad choice of models. Inside a Gradio event, when every run
    failed, the last tuple is followed by ``gradio.Error`` (like ``stream``); a run that
    fails among others ends only its own place.
    """
    registry = registry or get_registry()
    entries = chosen_entries(policy, models, max_models)
    seed = fields.get("seed")
    if seed is None or seed == -1:
        fields["seed"] = random_seed(shared_seed_range(entries, registry))
    runs = [CompareRun(entry.backend, _fields_for(entry, fields, registry)) for entry in entries]
    last: tuple[RunState, ...] = ()
    together = stream_together(
        runs,
        policy=policy,
        registry=registry,
        min_interval=min_interval,
        preview_max_side=preview_max_side,
    )
    try:
        for states in together:
            last = tuple(with_timing(state) for state in states)
            yield last
    finally:
        together.close()  # at once, not whenever the garbage collector gets to it
    if last and all(state.status == "error" for state in last):
        raise_failed(last[0])


def shared_seed_range(entries: Sequence[CatalogueEntry], registry: Registry) -> tuple[int, int]:
    """The seeds every chosen model that takes a seed accepts (each backend's
    ``capabilities_for(model).seed_range``), so one shared random seed suits them all; where the
    ranges do not overlap, the narrowest one (the others refuse the seed in their own panel)."""
    ranges = []
    for entry in entries:
        try:
            caps = registry.get(entry.backend).capabilities_for(entry.model)
        except Exception:  # an unknown backend or a failed listing: its own run says so
            continue
        if caps.seed:
            ranges.append(caps.seed_range)
    if not ranges:
        return SEED_RANGE
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    return (low, high) if low <= high else min(ranges, key=lambda r: r[1] - r[0])


def _fields_for(
    entry: CatalogueEntry, fields: Mapping[str, Any], registry: Registry
) -> dict[str, Any]:
    """The request for ``entry``: its id as the model, without what its model cannot take
    (``accepted_fields``, by the model's own capabilities)."""
    return accepted_fields(entry.backend, {**fields, "model": entry.model}, registry=registry) | {
        "model": entry.id
    }


def with_timing(state: RunState) -> RunState:
    """A finished run's state with the time it took and its steps per second in its message,
    e.g. "Done in 2.4 s, 8.3 steps/s." (after "Finished early ..." when it was)."""
    if state.status != "done":
        return state
    timing = f"Done in {state.elapsed:.1f} s"
    if state.steps_per_second:
        timing += f", {state.steps_per_second:.1f} steps/s"
    message = f"{state.message} {timing}." if state.message else f"{timing}."
    return state.model_copy(update={"message": message})
