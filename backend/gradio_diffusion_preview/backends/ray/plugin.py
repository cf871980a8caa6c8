"""The built-in ray plugin: one backend per Ray Serve application configured on the server
(endpoints of kind ``ray``), or one named ``ray`` that says how to configure one, or what is
wrong with a configuration that cannot be read (the app keeps serving)."""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from ...endpoints import backends_for_endpoints
    from .backend import KIND, RayBackend  # ray itself stays unimported until a run

    for backend in backends_for_endpoints(
        KIND, RayBackend, lambda problem: RayBackend(problem=problem)
    ):
        register(backend)
