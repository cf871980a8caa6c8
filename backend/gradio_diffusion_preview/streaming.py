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
from typing import Any

from .backend import Backend
from .control import RunControl
from .events import Failed, Finished, Started, Step
from .plugins import Registry, UnknownBackendError, get_registry
from .preview_encoding import DEFAULT_MAX_SIDE, encode_preview
from .progress import ProgressClock
from .request import GenerationRequest, InvalidRequest, build_request, validate_request
from .runner import BackendRunner
from .state import RunState

DEFAULT_MIN_INTERVAL = 0.05
HEARTBEAT_SECONDS = 1.0

_active: dict[str, RunControl] = {}
_active_lock = threading.Lock()


def _control_of(run_id: str | None) -> RunControl | None:
    with _active_lock:
        return _active.get(run_id or "")


def finish_run(run_id: str | None) -> bool:
    """Ask a running run to finish now with its current estimate; False if it is not running."""
    control = _control_of(run_id)
    if control is not None:
        control.finish_early()
    return control is not None


def cancel_run(run_id: str | None) -> bool:
    """Cancel a running run by id; False if it is not running."""
    control = _control_of(run_id)
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
    **fields: Any,
) -> Iterator[RunState]:
    """Run ``request`` (or the request made of ``fields``) on ``backend`` and yield its states.

    ``backend`` is a registered id or a ``Backend`` instance. Bad input never raises: it ends
    the stream with an ``error`` state whose message names the problem and the fix.
    """
    backend_id = backend if isinstance(backend, str) else backend.id
    try:
        backend_obj = (
            (registry or get_registry()).get(backend) if isinstance(backend, str) else backend
        )
        if isinstance(request, GenerationRequest):
            request = request.model_dump()
        resolved = validate_request(
            build_request(backend_obj, {**(request or {}), **fields}), backend_obj
        )
    except (InvalidRequest, UnknownBackendError) as error:
        yield RunState(status="error", backend=backend_id, message=str(error))
        return
    yield from _run(backend_obj, resolved, min_interval, preview_max_side)


def _run(
    backend: Backend,
    request: GenerationRequest,
    min_interval: float,
    preview_max_side: int,
) -> Iterator[RunState]:
    run_id = uuid.uuid4().hex
    control = RunControl()
    with _active_lock:
        _active[run_id] = control
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
    )
    clock = ProgressClock()
    runner = BackendRunner(backend.id, backend.generate(request, control), control, min_interval)
    runner.start()
    try:
        yield state
        while True:
            event = runner.channel.get(timeout=HEARTBEAT_SECONDS)
            if event is None and not runner.channel.closed:
                state = state.model_copy(update={"elapsed": clock.elapsed})
            elif event is None:
                break
            else:
                state = _apply(state, event, clock, preview_max_side)
            yield state
            if state.status in ("done", "error"):
                return
        if state.status == "running":
            yield _ended_without_result(state, backend.id, control, clock)
    finally:
        control.cancel()
        with _active_lock:
            _active.pop(run_id, None)
        runner.stop(timeout=1.0)


def _ended_without_result(
    state: RunState, backend_id: str, control: RunControl, clock: ProgressClock
) -> RunState:
    """The last state of a run whose backend stopped yielding without Finished or Failed."""
    if control.cancelled or control.finish_requested:
        status, message = "cancelled", "Cancelled."
    else:
        status = "error"
        message = (
            f"Backend '{backend_id}' stopped without a result or an error; "
            "report this to its authors."
        )
    return state.model_copy(update={"status": status, "message": message, "elapsed": clock.elapsed})


def _apply(state: RunState, event, clock: ProgressClock, preview_max_side: int) -> RunState:
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
            }
        )
    if isinstance(event, Step):
        clock.step(event.step)
        preview = state.preview
        if event.preview is not None:
            preview = encode_preview(event.preview, preview_max_side)
        return state.model_copy(
            update={
                "step": event.step,
                "total_steps": event.total_steps,
                "preview": preview,
                "elapsed": clock.elapsed,
                "steps_per_second": clock.steps_per_second(),
                "eta": clock.eta(event.total_steps),
                "message": None,
            }
        )
    if isinstance(event, Finished):
        message = (
            f"Finished early at step {state.step} of {state.total_steps}." if event.early else None
        )
        return state.model_copy(
            update={
                "status": "done",
                "images": list(event.images),
                "seeds": list(event.seeds),
                "step": state.step if event.early else state.total_steps,
                "eta": 0.0,
                "elapsed": clock.elapsed,
                "message": message,
            }
        )
    if isinstance(event, Failed):
        return state.model_copy(
            update={
                "status": "error",
                "message": event.message,
                "elapsed": clock.elapsed,
                "eta": None,
            }
        )
    raise TypeError(f"unknown event {event!r}")
