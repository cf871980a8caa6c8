"""The built-in a1111 plugin: one backend per configured AUTOMATIC1111 / Forge / SD.Next
endpoint, or, when none is configured, one backend (id ``a1111``) that says how to configure it."""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from ...endpoints import backends_for_endpoints
    from .backend import KIND, A1111Backend  # httpx stays unimported until a run

    for backend in backends_for_endpoints(
        KIND, A1111Backend, lambda problem: A1111Backend(problem=problem)
    ):
        register(backend)
