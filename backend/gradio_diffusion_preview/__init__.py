"""gradio-diffusion-preview: a Gradio component that streams text-to-image generation step by
step, and a pluggy registry of image-generation backends.

Heavy libraries (torch, diffusers) are imported only by the backends that use them.
"""

from .backend import Backend, Capabilities, ModelInfo
from .component import DiffusionPreview
from .control import RunControl
from .events import Failed, Finished, GenerationEvent, Started, Step
from .hookspecs import hookimpl
from .plugins import Registry, get_backend, get_registry, list_plugins
from .request import GenerationRequest, InvalidRequest, validate_request
from .state import PreviewData, RunState
from .stream import cancel_run, finish_run, stream

__all__ = [
    "Backend", "Capabilities", "DiffusionPreview", "Failed", "Finished", "GenerationEvent",
    "GenerationRequest", "InvalidRequest", "ModelInfo", "PreviewData", "Registry", "RunControl",
    "RunState", "Started", "Step", "cancel_run", "finish_run", "get_backend", "get_registry",
    "hookimpl", "list_plugins", "stream", "validate_request",
]
