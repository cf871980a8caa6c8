"""The hooks a gradio-diffusion-preview plugin can implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import Backend

PROJECT = "gradio_diffusion_preview"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backends(register: Callable[[Backend], None]) -> None:
    """Call ``register(backend)`` once for each image-generation backend this plugin provides."""
