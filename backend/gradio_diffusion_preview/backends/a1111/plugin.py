"""The built-in a1111 plugin: one backend per configured AUTOMATIC1111 / Forge / SD.Next
endpoint, or, when none is configured, one backend (id ``a1111``) that says how to configure it."""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from ...endpoints import EndpointConfigError, endpoints_of
    from .backend import KIND, A1111Backend

    try:
        endpoints = endpoints_of(KIND)
    except EndpointConfigError as error:  # shown as the backend's availability
        register(A1111Backend(problem=str(error)))
        return
    if not endpoints:
        register(A1111Backend())
    for endpoint in endpoints:
        try:
            backend = A1111Backend(endpoint)
        except EndpointConfigError as error:
            backend = A1111Backend(problem=str(error))
            backend.id = endpoint.id
        register(backend)
