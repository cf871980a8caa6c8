"""Guards Gradio's cancel route so that only an event's own session can cancel it.

Gradio's ``POST /gradio_api/cancel`` takes ``{session_hash, fn_index, event_id}`` from the body
and trusts each on its own (gradio 6.31, ``routes.py`` ``cancel_event``): it removes the event
``event_id`` from the queue and closes its running generator, whatever session posts it. A
visitor who learns another's event id (a shared screenshot of the network tab, a proxy log, a
browser extension) stops that visitor's run from any session. The event's session is known to
the server (``Queue.pending_event_ids_session``, from the event's join until its completion is
sent), so the guard lets a cancel through only when ``event_id`` is an event of the posted
``session_hash``; anything else does nothing and answers as Gradio does for an event already
over (``{"success": true}``), so the answer says nothing about other people's events.

A cancel let through also stops the event's runs itself (``run_handles.stop_event_runs``)
before Gradio sees it. Gradio stops a generator by closing it, which waits for its current
``next()`` to return and cannot happen at all during its first one: the iterator is registered
for the event only once that returns (``route_utils.call_process_api``). A cancel that came then
left the backend running, held by nothing but the garbage collector (seen on a busy machine:
the owner's ``job.cancel()`` ended the job, and the backend ran on).

``app_guards`` installs it on the app a ``DiffusionPreview`` is part of.
"""

from __future__ import annotations

import json
from typing import Any

from .request_guard import json_object, replaying
from .run_handles import stop_event_runs

CANCEL_PATH = "/gradio_api/cancel"
"""Gradio's cancel route, under the app's own path (``gradio.route_utils.API_PREFIX``)."""


class CancelGuard:
    """An ASGI wrapper passing a ``POST .../gradio_api/cancel`` on only when its ``event_id``
    is an event of its ``session_hash``, after stopping that event's runs; every other request
    goes straight through."""

    def __init__(self, inner: Any, app: Any) -> None:
        self.inner, self.app = inner, app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if not (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").endswith(CANCEL_PATH)
        ):
            await self.inner(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fields = _cancel_fields(body)
        if fields is not None:
            if not is_own_event(self.app, *fields):
                await _answer(send, {"success": True})  # nothing done, nothing told
                return
            stop_event_runs(*fields)  # at once, whatever state Gradio's generator is in
        await self.inner(scope, replaying(body, receive), send)


def _cancel_fields(body: bytes) -> tuple[str, str] | None:
    """(session_hash, event_id) of a cancel body; None for a malformed body, which Gradio
    itself refuses (422)."""
    data = json_object(body)
    if data is None:
        return None
    session, event = data.get("session_hash"), data.get("event_id")
    return (session, event) if isinstance(session, str) and isinstance(event, str) else None


async def _answer(send: Any, payload: dict) -> None:
    content = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def is_own_event(app: Any, session_hash: str, event_id: str) -> bool:
    """Whether ``event_id`` is a queued or running event of the session ``session_hash``."""
    pending = app.get_blocks()._queue.pending_event_ids_session.get(session_hash) or ()
    return event_id in pending
