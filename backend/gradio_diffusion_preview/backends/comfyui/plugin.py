"""The built-in ComfyUI plugin: one backend per configured ComfyUI endpoint.

Endpoints come from the server's configuration (``DIFFUSION_PREVIEW_COMFYUI_URL``, or entries of
kind ``comfyui`` in the ``DIFFUSION_PREVIEW_ENDPOINTS`` file). With none configured, or with a
configuration that cannot be read, one backend named ``comfyui`` is registered whose
availability says what to fix, so the app keeps serving and the CLI shows the problem.
"""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from ...endpoints import backends_for_endpoints
    from .backend import KIND, ComfyUIBackend  # httpx and websockets stay unimported

    for backend in backends_for_endpoints(
        KIND, ComfyUIBackend, lambda problem: ComfyUIBackend(problem=problem)
    ):
        register(backend)
