"""The built-in ComfyUI plugin: one backend per configured ComfyUI endpoint.

Endpoints come from the server's configuration (``DIFFUSION_PREVIEW_COMFYUI_URL``, or entries of
kind ``comfyui`` in the ``DIFFUSION_PREVIEW_ENDPOINTS`` file). With none configured, or with a
configuration that cannot be read, one backend named ``comfyui`` is registered whose
availability says what to fix, so the app keeps serving and the CLI shows the problem.
"""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...endpoints import EndpointConfigError, endpoints_of
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from .backend import KIND, ComfyUIBackend  # httpx and websockets stay unimported

    try:
        endpoints = endpoints_of(KIND)
    except EndpointConfigError as error:
        register(ComfyUIBackend(problem=str(error)))
        return
    if not endpoints:
        register(ComfyUIBackend())
    for endpoint in endpoints:
        register(ComfyUIBackend(endpoint))
