"""The built-in diffusers plugin: registers the local diffusers backend like any third-party one."""

from __future__ import annotations

from collections.abc import Callable

from ...backend import Backend
from ...hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    from .backend import DiffusersBackend  # torch and diffusers stay unimported until generate

    register(DiffusersBackend())
