"""The glue: run a backend and turn its events into a stream of ``RunState`` for a Gradio event.

    run = button.click(lambda p: stream("diffusers", model="...", prompt=p), prompt, preview)

``stream`` is the run engine's plainest adapter (``run_engine``): one run, owned by the Gradio
session of the event that iterates it. The engine validates the request centrally, runs the
backend on its own thread (so a slow browser never slows generation), coalesces steps (latest
wins, at most one frame per ``min_interval``) and encodes previews off the generation thread;
closing the generator (cancel button, ``cancels=[...]``, ``gradio_client`` ``job.cancel()``, tab
closed) stops the backend. ``raise_failed`` turns a failed run into ``gradio.Error`` inside an
event. Runs are stopped by id with ``run_handles.cancel_run`` and ``finish_run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .backend import Backend
from .ownership import current_client, current_event, current_session
from .plugins import Registry
from .preview_encoding import DEFAULT_MAX_SIDE
from .request import GenerationRequest
from .run_engine import DEFAULT_MIN_INTERVAL, ENGINE, RunSpec
from .run_state import RunState

if TYPE_CHECKING:
    from .policy import Policy


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

    ``backend`` is a registered id, a ``Backend`` instance, or a loaded diffusers pipeline (also
    accepted as ``model=pipe``), which runs as it is: see ``PipelineBackend``. Bad input and
    failed runs end the stream with an ``error`` state whose message names the problem and the
    fix, and whose ``reason`` says what kind of failure it is. Iterated by Python code, the
    stream never raises; inside a Gradio event it then raises ``gradio.Error`` carrying the
    message and reason (see ``raise_failed``), so an API call ends as an error while the
    component keeps showing the failed run. With a ``policy`` (for a visitor's request in a
    public app) the request's ``model`` names a catalogue entry, and the policy's limits, fair
    queue and time limit apply (see ``policy``); without one, anything goes.
    """
    spec = run_spec(backend, request, fields, registry, policy, min_interval, preview_max_side)
    handle = ENGINE.open(current_session(), current_event())
    handle.client = current_client(policy.trusted_proxies) if policy is not None else None
    states = ENGINE.states(spec, handle)
    try:
        for state in states:
            yield state
            if state.status == "error":
                raise_failed(state)
    finally:
        states.close()  # at once: the backend stops, the run leaves the registry


def run_spec(
    backend: str | Backend,
    request: GenerationRequest | dict[str, Any] | None,
    fields: dict[str, Any],
    registry: Registry | None = None,
    policy: Policy | None = None,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    preview_max_side: int = DEFAULT_MAX_SIDE,
) -> RunSpec:
    """The engine's ``RunSpec`` for ``stream``'s arguments: ``request`` (a model or a dict)
    with ``fields`` over it."""
    if isinstance(request, GenerationRequest):
        request = request.model_dump()
    fields = {**(request or {}), **fields}
    backend, fields = _app_pipeline(backend, fields)
    return RunSpec(
        backend,
        fields,
        policy,
        registry,
        None,
        min_interval,
        preview_max_side,
    )


def _app_pipeline(backend: Any, fields: dict[str, Any]) -> tuple[str | Backend, dict[str, Any]]:
    """A loaded diffusers pipeline, given as the backend or as the model, becomes its
    ``PipelineBackend`` (the pipeline itself runs: no copy, no save)."""
    from .backends.diffusers.app_pipeline import backend_for, is_pipeline

    if is_pipeline(backend):
        return backend_for(backend), fields
    if is_pipeline(fields.get("model")):
        pipe_backend = backend_for(fields["model"])
        return pipe_backend, {**fields, "model": pipe_backend.name}
    return backend, fields


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
