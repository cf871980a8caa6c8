"""Bounds every byte a visitor sends to the Gradio app, and answers bad calls with a plain 4xx.

An ASGI wrapper (installed by ``app_guards`` with the cancel guard) in front of Gradio's routes:

- **Bodies**: a request body over the policy's ``max_body_bytes`` is refused with 413 and a
  plain sentence before it is read whole: a ``Content-Length`` over the bound at once, a chunked
  body as soon as its chunks add up past it. (Gradio parses a 50 MB JSON body before anything
  checks it, and the process keeps the memory.)
- **Uploads**: ``POST .../gradio_api/upload`` is refused (403) in an app with no upload control;
  in one with an upload control the body is held to ``max_file_size`` (and Gradio's own
  ``max_file_size`` is set to it, for each file), and where the app's uploads expire
  (``upload_expiry``, the library's Edit tabs) the expired ones are removed first.
- **Calls**: a call to an endpoint or ``fn_index`` the app does not have gets 404 (Gradio: 500
  and a ``KeyError`` traceback); one with fewer inputs than the endpoint takes gets 422 naming
  them (Gradio: an error event with ``{"error": null}``); a session hash longer than
  ``MAX_SESSION_HASH`` or event data larger than ``MAX_EVENT_DATA`` gets 400.

The bounds come from the ``Policy`` registered for the app's Blocks (``use_policy``), else the
``Policy`` defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread

from .upload_expiry import upload_expiry_of

MAX_SESSION_HASH = 128
"""Characters of a session hash (Gradio's page makes 11, gradio_client a 36-character uuid)."""
MAX_EVENT_DATA = 10_000
"""Bytes of an event's data as JSON (the widget's Stop sends a run id)."""
MULTIPART_SLACK = 64 * 1024
"""Room for the multipart headers around an upload's file."""
CALL_ROUTES = (
    "/gradio_api/queue/join",
    "/gradio_api/run/",
    "/gradio_api/call/",
    "/gradio_api/api/",
)
"""Routes whose JSON body names an endpoint, its inputs, a session and event data."""
UPLOAD_ROUTE = "/gradio_api/upload"
UPLOAD_CONTROLS = (
    "File",
    "Files",
    "UploadButton",
    "Image",
    "ImageEditor",
    "Sketchpad",
    "Paint",
    "Audio",
    "Video",
    "Model3D",
    "Gallery",
    "MultimodalTextbox",
    "SimpleImage",
    "ImageSlider",
    "Dataframe",
)
"""Gradio components through which a visitor can upload a file (when they are inputs)."""


def replaying(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` for the app behind a guard that has read the request's ``body``:
    the body once, whole, then the client's own messages (a disconnect)."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@dataclass(frozen=True)
class Bounds:
    """What the guard holds requests to (from a ``Policy``)."""

    max_body_bytes: int
    max_file_size: int


def bounds_of(blocks: Any) -> Bounds:
    """The bounds of the policy registered for ``blocks``, else the ``Policy`` defaults."""
    from .policy import Policy

    policy = getattr(blocks, "_gdp_policy", None)
    if policy is not None:
        return Bounds(policy.max_body_bytes, policy.max_file_size)
    fields = Policy.__dataclass_fields__
    return Bounds(fields["max_body_bytes"].default, fields["max_file_size"].default)


def use_policy(policy: Any, blocks: Any = None) -> None:
    """Register ``policy`` for ``blocks`` (default: the Blocks being built), whose app the
    guard then holds to the policy's bounds. The library's tabs call it."""
    if blocks is None:
        from gradio.context import Context

        blocks = Context.root_block
    if blocks is not None:
        blocks._gdp_policy = policy


def has_upload_control(blocks: Any) -> bool:
    """Whether a visitor can upload a file in ``blocks``: one of its events takes an input
    from a component that uploads (``UPLOAD_CONTROLS``) and is not read-only."""
    inputs = {
        id(block)
        for fn in getattr(blocks, "fns", {}).values()
        for block in getattr(fn, "inputs", ())
    }
    for block in getattr(blocks, "blocks", {}).values():
        interactive = getattr(block, "interactive", None)
        takes_input = id(block) in inputs or bool(interactive)
        if type(block).__name__ in UPLOAD_CONTROLS and interactive is not False and takes_input:
            return True
    return False


class RequestGuard:
    """The ASGI wrapper; see the module docstring."""

    def __init__(self, inner: Any, app: Any) -> None:
        self.inner, self.app = inner, app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        blocks = self.app.get_blocks()
        path = scope.get("path", "")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if any(len(value) > MAX_SESSION_HASH for value in query.get("session_hash", ())):
            await plain(send, 400, f"A session hash has at most {MAX_SESSION_HASH} characters.")
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.inner(scope, receive, send)
            return
        bounds = bounds_of(blocks)
        limit = bounds.max_body_bytes
        if path.endswith(UPLOAD_ROUTE):
            if not has_upload_control(blocks):
                await plain(send, 403, "This app takes no uploads.")
                return
            limit = bounds.max_file_size + MULTIPART_SLACK
            if blocks.max_file_size is None or blocks.max_file_size > bounds.max_file_size:
                blocks.max_file_size = bounds.max_file_size
            expiry = upload_expiry_of(blocks)
            if expiry is not None:
                await anyio.to_thread.run_sync(expiry.sweep, blocks)
        length = _content_length(scope)
        if length is not None and length > limit:
            await plain(send, 413, too_large(limit))
            return
        if path.endswith(UPLOAD_ROUTE):  # streamed on to Gradio, its chunks counted
            await self._counted_upload(scope, receive, send, limit)
            return
        body = await _read(receive, limit)
        if body is None:  # the client went away
            return
        if body is _TOO_LARGE:
            await plain(send, 413, too_large(limit))
            return
        route = next((r for r in CALL_ROUTES if r in path), None)
        if route is not None:
            problem = _call_problem(blocks, path, route, body)
            if problem is not None:
                await plain(send, *problem)
                return
        await self.inner(scope, replaying(body, receive), send)

    async def _counted_upload(self, scope: dict, receive: Any, send: Any, limit: int) -> None:
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.inner(scope, _counted(receive, limit), tracked)
        except _BodyTooLarge:
            if not started:
                await plain(send, 413, too_large(limit))


def too_large(limit: int) -> str:
    return f"The request is too large: this app reads at most {limit:,} bytes."


_TOO_LARGE = object()


class _BodyTooLarge(Exception):
    """A streamed upload passed its bound."""


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read(receive: Any, limit: int) -> Any:
    """The whole body, or ``_TOO_LARGE`` once its chunks pass ``limit`` (the rest unread), or
    None when the client went away."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return _TOO_LARGE
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _counted(receive: Any, limit: int) -> Any:
    """``receive`` that ends the request as a disconnect once the body passes ``limit``."""
    size = 0

    async def counted() -> dict:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _BodyTooLarge
        return message

    return counted


def json_object(body: bytes) -> dict | None:
    """The JSON object a request body holds, or None for any other body (not JSON, or JSON
    that is not an object), which the guards leave to Gradio to refuse."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _call_problem(blocks: Any, path: str, route: str, body: bytes) -> tuple[int, str] | None:
    """(status, message) for a call the app cannot serve, or None to pass it on (a body that
    is not JSON is left to Gradio, which refuses it with 422)."""
    data = json_object(body)
    if data is None:
        return None
    session = data.get("session_hash")
    if isinstance(session, str) and len(session) > MAX_SESSION_HASH:
        return 400, f"A session hash has at most {MAX_SESSION_HASH} characters."
    event_data = data.get("event_data")
    if event_data is not None and len(json.dumps(event_data)) > MAX_EVENT_DATA:
        return 400, f"Event data is at most {MAX_EVENT_DATA:,} bytes as JSON."
    fn = _find_fn(blocks, path, route, data)
    if fn is None:
        return 404, "No such endpoint in this app; see its API page for the endpoints it has."
    inputs = data.get("data")
    wanted = [block for block in fn.inputs if type(block).__name__ != "State"]
    if isinstance(inputs, list) and len(inputs) < len(wanted):
        names = ", ".join(_input_name(block) for block in wanted)
        return (
            422,
            f"This endpoint takes {len(wanted)} inputs ({names}); the call sent {len(inputs)}. "
            "Send a value for each, in that order.",
        )
    return None


def _find_fn(blocks: Any, path: str, route: str, data: dict) -> Any:
    fns = dict(blocks.fns)
    session = data.get("session_hash")
    if isinstance(session, str) and session in blocks.state_holder:
        fns.update(blocks.state_holder[session].blocks_config.fns)  # gr.render's own events
    fn_index = data.get("fn_index")
    if route.endswith("join") or fn_index is not None:
        return fns.get(fn_index) if isinstance(fn_index, int) else None
    api_name = path.split(route, 1)[1].strip("/").split("/", 1)[0]
    return next((fn for fn in fns.values() if fn.api_name == api_name), None)


def _input_name(block: Any) -> str:
    return str(getattr(block, "label", None) or type(block).__name__.lower())


async def plain(send: Any, status: int, message: str) -> None:
    """Answer ``status`` with ``message`` as plain text."""
    content = message.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(content)),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
