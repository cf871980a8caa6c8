"""The stream check: ``stream(backend, ...)``, the path the component itself takes, turns the
backend's events into RunStates that end "done" with the requested images and carry previews
only as in-memory data URLs. Also runs that path for the no-files check."""

from __future__ import annotations

import time
from typing import Any, NoReturn

from ..backend import Backend
from ..request import GenerationRequest
from .defaults import DEFAULT_TIMEOUT
from .file_writes import watch_writes
from .puller import Puller
from .recording import resolve_request
from .report import ConformanceError, backend_name, describe_states


def check_stream(
    backend: Backend,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """``stream(backend, ...)``, the path the component uses, yields RunStates that end "done"
    with the requested images and carry previews only as in-memory data URLs."""
    request = resolve_request(backend, fields)
    states, _ = record_stream(backend, request, timeout)
    expect_stream_states(backend_name(backend), request, states)


def record_stream(
    backend: Backend,
    request: GenerationRequest,
    timeout: float,
    watch_files: bool = False,
) -> tuple[list, list[str]]:
    """Every RunState ``stream()`` yields for ``request`` within ``timeout`` seconds, and (with
    ``watch_files``) the files opened for writing meanwhile."""
    from ..streaming import stream  # the kit is usable without importing Gradio until here

    states: list = []
    writes: list[str] = []
    with watch_writes(writes, watch_files):
        puller = Puller(lambda: stream(backend, request, min_interval=0.0), backend_name(backend))
        t0 = time.monotonic()
        try:
            while True:
                kind, item = puller.next(timeout - (time.monotonic() - t0))
                if kind == "item":
                    states.append(item)
                    continue
                if kind == "raised":
                    raise ConformanceError(
                        backend_name(backend),
                        "stream",
                        "stream() to report problems as states",
                        f"it raised {type(item).__name__}: {item}",
                        describe_states(states),
                        fix="report every failure inside generate as Failed(message, reason), "
                        "never by raising",
                    )
                if kind == "timeout":
                    raise ConformanceError(
                        backend_name(backend),
                        "stream",
                        f"stream() to end within {timeout:.0f}s",
                        "it did not",
                        describe_states(states),
                        fix="end each run with Finished or Failed and return, yielding an event "
                        "at least every few seconds while waiting; a slow backend passes a "
                        "larger timeout=... to the kit",
                    )
                break
        finally:
            puller.close()
    return states, writes


def expect_stream_states(backend: str, request: GenerationRequest, states: list) -> None:
    """The rules of ``check_stream``, on the states of one stream of ``request``."""

    def fail(expected: str, seen: str, *, fix: str) -> NoReturn:
        raise ConformanceError(backend, "stream", expected, seen, describe_states(states), fix=fix)

    if not states:
        fail(
            "RunStates from stream()",
            "none",
            fix="yield Started and then Finished or Failed from generate (stream() turns them "
            "into states)",
        )
    last = states[-1]
    if last.status != "done":
        fail(
            "the last state to be 'done'",
            f"'{last.status}': {last.message}",
            fix="finish the run with Finished(images, seeds); the message above is what the "
            "component shows",
        )
    if len(last.images) != request.num_images or any(
        image.size != (request.width, request.height) for image in last.images
    ):
        fail(
            f"{request.num_images} image(s) of {request.width}x{request.height}",
            ", ".join(f"{i.width}x{i.height}" for i in last.images) or "no images",
            fix="pass Finished request.num_images PIL images of request.width x request.height",
        )
    for state in states:
        if state.preview is not None and not state.preview.startswith("data:image/"):
            fail(
                "previews as in-memory data URLs",
                f"{state.preview[:60]!r}",
                fix="send previews as PIL images or numpy arrays, never as paths or URLs",
            )
