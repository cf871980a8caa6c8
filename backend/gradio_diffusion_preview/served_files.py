"""The files the app is serving right now, so that image retention never removes one mid-response.

Gradio serves a cached file (``GET .../gradio_api/file=<path>``) by checking that it exists, then
Starlette's ``FileResponse`` reads its size (the Content-Length) and opens it, each a thread hop
apart. A file removed in between ends the response early: an error in the server log and a
broken image in the browser. ``ServedFiles`` (installed by ``app_guards``) counts the requests
in flight per file, from before Gradio looks at it to after the last byte is sent, and
``remove_unless_served`` removes a file only when none is, under the same lock: a request that
comes after the removal finds no file (404), one that came before is served whole.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FILE_ROUTE = "/gradio_api/file="
"""Gradio's route for cached files, under the app's own path."""

_lock = threading.Lock()
_in_flight: Counter[str] = Counter()


def remove_unless_served(path: Path) -> bool:
    """Remove ``path`` unless a response is reading it; returns False when it is (try later)."""
    key = _key(str(path))
    with _lock:
        if _in_flight[key]:
            return False
        path.unlink(missing_ok=True)
    return True


def served_now(path: str | Path) -> int:
    """How many responses are serving ``path`` at this moment."""
    with _lock:
        return _in_flight[_key(str(path))]


class ServedFiles:
    """An ASGI wrapper counting the GET and HEAD requests of Gradio's file route per file."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        where = path.find(FILE_ROUTE)
        if where < 0 or scope.get("method") not in ("GET", "HEAD"):
            await self.inner(scope, receive, send)
            return
        key = _key(unquote(path[where + len(FILE_ROUTE) :]))
        with _lock:
            _in_flight[key] += 1
        try:
            await self.inner(scope, receive, send)
        finally:
            with _lock:
                _in_flight[key] -= 1
                if not _in_flight[key]:
                    del _in_flight[key]


def _key(path: str) -> str:
    """One spelling per file, as Gradio resolves it (relative paths from the working folder)."""
    return str(Path(path).resolve())
