"""The built-in hf-inference plugin: registers the Hugging Face Inference backend, configured
from the environment, like any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from .backend import HfInferenceBackend  # no HTTP client is imported until a run starts

    register(HfInferenceBackend.from_environment())
