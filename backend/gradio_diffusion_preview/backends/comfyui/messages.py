"""What ComfyUI sends on its websocket, parsed: JSON messages and binary preview frames.

Text frames are ``{"type": ..., "data": {...}}`` (server.py ``send_json``). Binary frames
(``encode_bytes``) start with a 4-byte big-endian event type:

- ``1`` PREVIEW_IMAGE: a 4-byte big-endian image type (1 = JPEG, 2 = PNG), then the image. It
  carries no prompt or node id; it follows the ``progress`` message of the step it shows.
- ``4`` PREVIEW_IMAGE_WITH_METADATA (only after the client announced
  ``supports_preview_metadata``): a 4-byte big-endian length, that many bytes of JSON metadata
  (``prompt_id``, ``node_id``, ``image_type``, ...), then the image. It comes *before* the
  ``progress`` message of its step.
- ``3`` TEXT (a node's progress text) and anything else: of no use to us.

Nothing here raises on garbage: a frame that cannot be read becomes ``Unreadable``, which the
run counts and otherwise ignores. Images are decoded lazily (``PreviewFrame.image()``), so a
frame nobody shows costs nothing.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import PIL.Image

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_TYPES = {1: "JPEG", 2: "PNG"}
FEATURE_FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
"""The first message a client may send; a server that knows feature flags answers with its own
and then sends previews with metadata (type 4)."""


@dataclass(frozen=True)
class Message:
    """A JSON message: ``type`` and its ``data`` (always a dict; empty when missing)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_id(self) -> str | None:
        value = self.data.get("prompt_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class PreviewFrame:
    """A step preview; ``prompt_id`` and ``node_id`` only when the server sent metadata."""

    payload: bytes
    prompt_id: str | None = None
    node_id: str | None = None

    def image(self) -> PIL.Image.Image | None:
        """The decoded RGB image, or None when the bytes are not an image."""
        try:
            with PIL.Image.open(io.BytesIO(self.payload)) as image:
                image.load()
                return image.convert("RGB")
        except Exception:  # any undecodable bytes: Pillow raises many kinds
            return None


@dataclass(frozen=True)
class Unreadable:
    """A frame that is not a ComfyUI message or preview; ``why`` says what was wrong."""

    why: str


@dataclass(frozen=True)
class Ignored:
    """A well-formed frame of no use here (progress text, an event type we do not know)."""

    what: str


Frame = Message | PreviewFrame | Unreadable | Ignored


def parse_frame(frame: str | bytes) -> Frame:
    """One websocket frame, parsed."""
    if isinstance(frame, str):
        return parse_text(frame)
    return parse_binary(bytes(frame))


def parse_text(text: str) -> Message | Unreadable:
    try:
        decoded = json.loads(text)
    except ValueError:
        return Unreadable(f"a text frame that is not JSON ({len(text)} characters)")
    if not isinstance(decoded, dict) or not isinstance(decoded.get("type"), str):
        return Unreadable("a JSON frame without a 'type'")
    data = decoded.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return Unreadable(f"a '{decoded['type']}' message whose data is not an object")
    return Message(decoded["type"], data)


def parse_binary(frame: bytes) -> PreviewFrame | Unreadable | Ignored:
    if len(frame) < 4:
        return Unreadable(f"a binary frame of {len(frame)} bytes")
    (event,) = struct.unpack(">I", frame[:4])
    if event == PREVIEW_IMAGE:
        if len(frame) < 8:
            return Unreadable("a preview frame without its image type")
        (image_type,) = struct.unpack(">I", frame[4:8])
        if image_type not in IMAGE_TYPES:
            return Unreadable(f"a preview of unknown image type {image_type}")
        return PreviewFrame(frame[8:])
    if event == PREVIEW_IMAGE_WITH_METADATA:
        return _with_metadata(frame[4:])
    return Ignored(f"binary event {event}")


def _with_metadata(body: bytes) -> PreviewFrame | Unreadable:
    if len(body) < 4:
        return Unreadable("a preview frame without its metadata length")
    (length,) = struct.unpack(">I", body[:4])
    if length > len(body) - 4:
        return Unreadable(f"a preview frame whose metadata length {length} overruns it")
    try:
        metadata = json.loads(body[4 : 4 + length])
    except ValueError:
        return Unreadable("a preview frame whose metadata is not JSON")
    if not isinstance(metadata, dict):
        return Unreadable("a preview frame whose metadata is not an object")
    prompt_id, node_id = metadata.get("prompt_id"), metadata.get("node_id")
    return PreviewFrame(
        body[4 + length :],
        prompt_id if isinstance(prompt_id, str) else None,
        str(node_id) if isinstance(node_id, str | int) else None,
    )
