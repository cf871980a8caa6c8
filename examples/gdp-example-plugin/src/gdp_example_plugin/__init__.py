"""gdp-example-plugin: a gradio-diffusion-preview plugin with one procedural backend.

The ``gradio_diffusion_preview`` entry point in pyproject.toml names this module; the registry
imports it and calls its ``register_backends`` hook.
"""

from __future__ import annotations

from collections.abc import Callable

from gradio_diffusion_preview import Backend, hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    # Import lazily and construct cheaply: this runs whenever the registry loads.
    from .backend import FractalBackend

    register(FractalBackend())
