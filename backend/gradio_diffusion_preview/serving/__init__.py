"""Serving any registered backend on a pool of Ray Serve replicas (GitHub issue #13).

``settings`` (what to serve and how; the Serve config file), ``app`` (the application, from
Python or a config file), ``deployment`` (the replica side), ``wire`` (the events' compact form
between the two sides), ``signals`` (finish-early for a run on another process) and ``ctrl_c``
(a blocking run's wait for Ctrl-C). The caller's side is the ``ray`` backend, ``backends/ray``.
Only ``app`` and ``deployment`` need Ray; names load on first use so that
``from gradio_diffusion_preview.serving import ServeSettings`` does not import it. See
docs/scaling.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Autoscaling": "settings",
    "HostedBackend": "settings",
    "ServeSettings": "settings",
    "BackendServer": "deployment",
    "application": "app",
    "build_app": "app",
    "run": "app",
}
__all__ = [
    "Autoscaling",
    "BackendServer",
    "HostedBackend",
    "ServeSettings",
    "application",
    "build_app",
    "run",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


if TYPE_CHECKING:
    from .app import application, build_app, run
    from .deployment import BackendServer
    from .settings import Autoscaling, HostedBackend, ServeSettings
