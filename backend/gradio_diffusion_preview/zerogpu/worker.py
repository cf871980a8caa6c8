"""The side of a ZeroGPU run that works in the forked GPU worker: the hosted backend's
generation, and nothing else.

``gpu_task`` makes the generator function that ``@spaces.GPU`` decorates. Its arguments and every
value it yields are pickled across the process boundary, so it takes the hosted backend's key
(the backend object itself was forked with the app's process), the request as a dict and the
run's signal slot, and yields each event in the wire form of ``serving.wire`` (plain values and
arrays). Whatever the backend does, including raising, the worker yields a ``Failed`` event
rather than an exception, so the app reports it like a local run's failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from ..backend import Backend
from ..events import Failed, Finished, GenerationEvent, Step
from ..request import GenerationRequest
from ..serving.wire import to_wire
from .signals import SlotControl, run_signals

log = logging.getLogger(__name__)

HOSTED: dict[str, Backend] = {}
"""The hosted backends by their ZeroGPU backend's id; filled at startup in the app's process, so
every forked worker has them (with the models they loaded)."""


def run_in_worker(key: str, request: dict[str, Any], slot: int) -> Iterator[dict[str, Any]]:
    """The hosted backend's events for ``request``, in wire form, signalled through ``slot``."""
    backend = HOSTED.get(key)
    if backend is None:
        yield to_wire(Failed(f"No backend is hosted on ZeroGPU as '{key}'.", "unavailable"))
        return
    control = SlotControl(run_signals(), slot)
    events: Iterator[GenerationEvent] | None = None
    try:
        events = iter(backend.generate(GenerationRequest.model_validate(request), control))
        for event in events:
            if control.cancelled:
                return
            yield to_wire(_settled(event))
            if isinstance(event, Finished | Failed):
                return
    except MemoryError:
        yield to_wire(
            Failed(
                f"Backend '{backend.id}' ran out of GPU memory. Fix: ask for a smaller size or "
                "fewer images.",
                "out_of_memory",
            )
        )
    except Exception as error:
        log.exception("backend %r raised on the ZeroGPU worker", backend.id)
        yield to_wire(
            Failed(
                f"Backend '{backend.id}' raised {type(error).__name__}: {error}. This is a bug "
                "in the backend; report it to its authors."
            )
        )
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _settled(event: GenerationEvent) -> GenerationEvent:
    """A step whose preview is still being made on the device (``result()``) with its pixels:
    only plain arrays cross to the app."""
    if isinstance(event, Step):
        preview = event.preview
        if isinstance(preview, list):
            settled: Any = [_pixels(item) for item in preview]
        else:
            settled = _pixels(preview)
        if settled is not preview:
            return Step(event.step, event.total_steps, settled)
    return event


def _pixels(preview: Any) -> Any:
    result = getattr(preview, "result", None)
    return result() if callable(result) else preview


def gpu_task(
    decorate: Callable[..., Any], duration: Callable[..., float], size: str | None
) -> Callable[[str, dict[str, Any], int, float], Iterator[dict[str, Any]]]:
    """A fresh generator function decorated by ``decorate`` (``spaces.GPU``) for one ZeroGPU
    backend, whose GPU lease lasts ``duration(key, request, slot, seconds)`` seconds."""

    def generate_on_gpu(
        key: str, request: dict[str, Any], slot: int, seconds: float
    ) -> Iterator[dict[str, Any]]:
        yield from run_in_worker(key, request, slot)

    return decorate(generate_on_gpu, duration=duration, size=size)
