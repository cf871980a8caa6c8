"""The built-in remote Gradio plugin: one backend per configured endpoint of kind "gradio".

Endpoints come from ``DIFFUSION_PREVIEW_GRADIO_URL`` (and ``_TOKEN``, ``_USER``, ``_PASSWORD``)
and from the file named by ``DIFFUSION_PREVIEW_ENDPOINTS`` (see ``endpoints``). With none, one
backend named ``gradio`` is registered whose availability says how to configure it; an endpoint
configured wrongly is registered the same way, with what is wrong and the fix. Registering
makes no network call.
"""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl

KIND = "gradio"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from ...endpoints import backends_for_endpoints
    from .backend import RemoteGradioBackend, UnconfiguredGradioBackend

    for backend in backends_for_endpoints(
        KIND, RemoteGradioBackend, lambda problem: UnconfiguredGradioBackend(KIND, problem)
    ):
        register(backend)
