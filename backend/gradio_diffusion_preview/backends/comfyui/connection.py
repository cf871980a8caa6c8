"""The websocket one run listens on: ``GET /ws?clientId=<id>``, with the websockets sync client.

ComfyUI sends a prompt's events only to the socket whose client id the prompt was submitted
with, so each run opens its own socket, with its own id, *before* it submits. A new socket with
the same id replaces the old one on the server, which is how a dropped socket is reconnected.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ..remote_failure import RemoteFailure
from .client import auth_headers, refused, sentence
from .messages import FEATURE_FLAGS, Frame, parse_frame

if TYPE_CHECKING:
    from ...endpoints import Endpoint

MAX_FRAME_BYTES = 64 * 2**20
"""The largest frame accepted (a full-size PNG sent by a SaveImageWebsocket node fits)."""


class SocketClosed(Exception):
    """The websocket closed (the server went away, or replaced it)."""


def socket_url(base_url: str, client_id: str) -> str:
    """``http(s)://host[:port][/path]`` -> ``ws(s)://host[:port][/path]/ws?clientId=...``."""
    scheme, _, rest = base_url.partition("://")
    ws_scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    return f"{ws_scheme}://{rest}/ws?clientId={quote(client_id, safe='')}"


class EventSocket:
    """One run's websocket: open it, read frames with a timeout, close it."""

    def __init__(self, endpoint: Endpoint, backend_id: str, client_id: str) -> None:
        self.url = socket_url(endpoint.url, client_id)
        self.headers = auth_headers(endpoint)
        self.where = f"the ComfyUI server of backend '{backend_id}'"
        self._connection: ClientConnection | None = None
        self._stack = contextlib.ExitStack()

    def open(self, timeout: float) -> None:
        """Connect (or reconnect) and announce that we read previews with metadata."""
        self.close()
        try:
            connection = connect(
                self.url,
                additional_headers=self.headers or None,
                open_timeout=max(0.1, timeout),
                close_timeout=1.0,
                max_size=MAX_FRAME_BYTES,
                compression=None,
            )
            self._connection = self._stack.enter_context(connection)  # closed by close()
            self._connection.send(json.dumps(FEATURE_FLAGS))
        except InvalidStatus as error:
            raise _refused(self.where, error.response.status_code) from None
        except InvalidHandshake as error:
            raise RemoteFailure(
                f"{sentence(self.where)} did not open a websocket at /ws "
                f"({error}). Fix: check that the backend's address is a ComfyUI server, and "
                "that a proxy in front of it passes websockets through.",
                "remote_error",
            ) from None
        except (OSError, TimeoutError, ConnectionClosed) as error:
            raise RemoteFailure(
                f"Cannot reach {self.where} ({type(error).__name__}: {error}). Fix: check that "
                "ComfyUI is running at the configured address (start it with --listen to reach "
                "it from another machine).",
                "unavailable",
            ) from None

    def receive(self, timeout: float) -> Frame | None:
        """The next frame, parsed, or None when none came within ``timeout`` seconds; raises
        ``SocketClosed`` when the socket is gone."""
        if self._connection is None:
            raise SocketClosed("not open")
        try:
            frame = self._connection.recv(timeout=max(0.0, timeout))
        except TimeoutError:
            return None
        except ConnectionClosed as error:
            raise SocketClosed(str(error)) from None
        return parse_frame(frame)

    def close(self) -> None:
        self._connection = None
        # closing a broken socket may fail in many ways; it is gone either way
        with contextlib.suppress(Exception):
            self._stack.close()


def _refused(where: str, status: int) -> RemoteFailure:
    if status in (401, 403):
        return refused(where, "the websocket", status)
    return RemoteFailure(
        f"{sentence(where)} refused the websocket at /ws (HTTP {status}). Fix: check that the "
        "backend's address is a ComfyUI server.",
        "unavailable" if status in (502, 503, 504) else "remote_error",
    )
