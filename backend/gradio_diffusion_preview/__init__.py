"""gradio-diffusion-preview: a Gradio component that streams text-to-image generation step by
step, and a pluggy registry of image-generation backends.

Names are imported on first use (PEP 562), so the registry, the CLI and plugins load without
gradio, and heavy libraries (torch, diffusers) are imported only by the backends that use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Availability": "backend",
    "AvailabilityState": "backend",
    "FailureReason": "events",
    "Phase": "events",
    "Backend": "backend",
    "ModelDefaults": "backend",
    "ModelListingError": "backend",
    "Status": "events",
    "BackendUnavailable": "request",
    "RunRefused": "request",
    "Capabilities": "backend",
    "ModelInfo": "backend",
    "Options": "typed_options",
    "DiffusionPreview": "component",
    "RunControl": "control",
    "Failed": "events",
    "Cancelled": "events",
    "Finished": "events",
    "ImageReady": "events",
    "GenerationEvent": "events",
    "Started": "events",
    "Step": "events",
    "hookimpl": "hookspecs",
    "Registry": "plugins",
    "get_backend": "plugins",
    "get_registry": "plugins",
    "list_plugins": "plugins",
    "GenerationRequest": "request",
    "InvalidRequest": "request",
    "validate_request": "request",
    "PreviewData": "state",
    "RunState": "run_state",
    "accepted_fields": "model_fields",
    "astream": "async_stream",
    "on_zerogpu": "zerogpu",
    "cancel_run": "run_handles",
    "failure_text": "streaming",
    "finish_run": "run_handles",
    "raise_failed": "streaming",
    "stream": "streaming",
    "LiveSteps": "loop",
    "LoopStopped": "loop",
    "stream_loop": "loop",
}
__all__ = [
    "Availability",
    "AvailabilityState",
    "Backend",
    "BackendUnavailable",
    "Capabilities",
    "DiffusionPreview",
    "Failed",
    "FailureReason",
    "Cancelled",
    "Finished",
    "ImageReady",
    "GenerationEvent",
    "GenerationRequest",
    "InvalidRequest",
    "LiveSteps",
    "LoopStopped",
    "ModelDefaults",
    "ModelInfo",
    "ModelListingError",
    "Options",
    "Phase",
    "PreviewData",
    "Registry",
    "RunControl",
    "RunRefused",
    "RunState",
    "Started",
    "Status",
    "Step",
    "accepted_fields",
    "astream",
    "cancel_run",
    "failure_text",
    "finish_run",
    "get_backend",
    "get_registry",
    "hookimpl",
    "list_plugins",
    "on_zerogpu",
    "raise_failed",
    "stream",
    "stream_loop",
    "validate_request",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from .async_stream import astream
    from .backend import (
        Availability,
        AvailabilityState,
        Backend,
        Capabilities,
        ModelDefaults,
        ModelInfo,
        ModelListingError,
    )
    from .component import DiffusionPreview
    from .control import RunControl
    from .events import (
        Cancelled,
        Failed,
        FailureReason,
        Finished,
        GenerationEvent,
        ImageReady,
        Phase,
        Started,
        Status,
        Step,
    )
    from .hookspecs import hookimpl
    from .loop import LiveSteps, LoopStopped, stream_loop
    from .model_fields import accepted_fields
    from .plugins import Registry, get_backend, get_registry, list_plugins
    from .request import (
        BackendUnavailable,
        GenerationRequest,
        InvalidRequest,
        RunRefused,
        validate_request,
    )
    from .run_handles import cancel_run, finish_run
    from .run_state import RunState
    from .state import PreviewData
    from .streaming import failure_text, raise_failed, stream
    from .typed_options import Options
    from .zerogpu import on_zerogpu
