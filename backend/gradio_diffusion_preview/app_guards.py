"""Guards put on the Gradio app a ``DiffusionPreview`` is part of, at its router (ASGI).

- ``cancel_guard``: Gradio's cancel route cancels an event only for the session it belongs to.
- ``request_guard``: every request body is bounded (uploads refused in an app without an
  upload control), and calls to unknown endpoints or with missing inputs get a plain 4xx.
- ``served_files``: the files being served right now are known, so image retention never removes
  one in the middle of a response.

The component installs them when its app starts (``Blocks.launch``, ``gradio app.py``, a Blocks
rendered into another), through Gradio's startup events (as ``gr.Examples`` caches its
examples): nothing to call. An app mounted into FastAPI with ``gr.mount_gradio_app`` calls
``guard_app(app)`` once after mounting (its Blocks has no server app of its own to find).

The guards wrap the router's ASGI stack, which the router reads on every request, so they work
whether or not the server has started, and whatever FastAPI does with its route list.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from .cancel_guard import CancelGuard
from .request_guard import RequestGuard
from .served_files import ServedFiles

log = logging.getLogger(__name__)

_guarded: weakref.WeakSet = weakref.WeakSet()
"""The Gradio apps guarded so far."""


def guard_app(app: Any) -> int:
    """Guard ``app`` (a Gradio app, or a FastAPI app with Gradio apps mounted in it); returns
    how many Gradio apps are guarded. Calling it again changes nothing."""
    from starlette.routing import Mount

    guarded = 0
    for route in list(getattr(getattr(app, "router", None), "routes", [])):
        if isinstance(route, Mount) and route.app is not app:
            guarded += guard_app(route.app)
    if hasattr(app, "get_blocks"):
        router = app.router
        if not isinstance(router.middleware_stack, RequestGuard):
            inner = CancelGuard(ServedFiles(router.middleware_stack), app)
            router.middleware_stack = RequestGuard(inner, app)
        _guarded.add(app)
        guarded += 1
    return guarded


def install_on_start(blocks: Any) -> None:
    """Have the app that serves ``blocks`` (the Blocks being built, or the one it is rendered
    into) guarded when it starts; registered once per Blocks."""
    if getattr(blocks, "_gdp_app_guards", False):
        return
    blocks._gdp_app_guards = True

    async def guard_started_apps() -> None:
        if not guard_running_apps() and not len(_guarded):
            log.warning(
                "This app's Gradio routes are not guarded (another session could cancel a run "
                "given its event id): it was not started with launch(). Call "
                "gradio_diffusion_preview.app_guards.guard_app(app) after "
                "gr.mount_gradio_app(app, ...)."
            )

    blocks.extra_startup_events.append(guard_started_apps)


def guard_running_apps() -> int:
    """Guard the app of every launched Blocks holding a ``DiffusionPreview``; returns how many
    apps are guarded. (A Blocks rendered into another is served by the other, which is the
    one found here.)"""
    import gradio as gr

    from .component import DiffusionPreview

    guarded = 0
    for blocks in gr.Blocks.get_instances():
        app = getattr(blocks, "server_app", None)
        if app is None or not getattr(blocks, "is_running", False):
            continue
        if any(isinstance(block, DiffusionPreview) for block in blocks.blocks.values()):
            guarded += guard_app(app)
    return guarded
