"""The local end of the remote Gradio backend's tests: the backend pointed at a loopback app."""

from __future__ import annotations

from gradio_diffusion_preview.backends.remote_gradio.backend import RemoteGradioBackend
from gradio_diffusion_preview.endpoints import Endpoint


def gradio_backend(url: str, *, timeout: float = 60.0, **options) -> RemoteGradioBackend:
    return RemoteGradioBackend(
        Endpoint(id="remote", kind="gradio", url=url, timeout=timeout, options=options)
    )
