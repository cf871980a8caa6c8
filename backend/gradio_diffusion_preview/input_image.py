"""Input images of a request (img2img, inpainting, editing): decoded in memory, never from a path.

A request's ``init_image`` and ``mask_image`` come from Python code as a PIL image, or from the
API as a data URL (``data:image/png;base64,...``) or plain base64 text of a PNG, JPEG or WebP
file. Anything else is refused, and a text that looks like a file name or a URL is refused as
such: a visitor's value never becomes a path the server opens or a URL it fetches. The encoded
size and the pixel count are bounded before any pixel is decoded (PIL reads the header lazily),
so a small file claiming a huge picture (a decompression bomb) costs nothing; a ``Policy`` sets
tighter bounds for a public app (``Limits.max_input_bytes``, ``Limits.max_input_pixels``).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

FORMATS = ("PNG", "JPEG", "WEBP")
"""The encoded formats accepted from the API."""
MAX_INPUT_BYTES = 50_000_000
"""The most encoded bytes an input image may have, with or without a policy."""
MAX_INPUT_PIXELS = 4096 * 4096
"""The most pixels an input image may have, with or without a policy."""
_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]*)(?:;[\w=.-]+)*;base64,(?P<data>.*)$", re.S)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
_PATH_LIKE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/])")


class ImageProblem(ValueError):
    """An input image refused: the rule it breaks and the fix, for ``InvalidRequest``."""

    def __init__(self, rule: str, fix: str, shown: str = "<image>") -> None:
        self.rule, self.fix, self.shown = rule, fix, shown
        super().__init__(f"{rule}. Fix: {fix}")


def describe(image: Any) -> str:
    """A short description of an input image for messages (never its bytes)."""
    size = getattr(image, "size", None)
    if size is None:
        return "<not an image>"
    return f"<{getattr(image, 'format', None) or 'PIL'} image {size[0]}x{size[1]}>"


def encoded_bytes(value: Any) -> int | None:
    """The bytes of the file a data URL or base64 text holds (from its length, without
    decoding it), the length of raw file bytes, or ``None`` for any other value."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    if not isinstance(value, str):
        return None
    match = _DATA_URL.match(value.strip())
    text = match.group("data") if match else value.strip()
    return len(text) * 3 // 4


def decode(value: Any, field: str, max_pixels: int = MAX_INPUT_PIXELS) -> Any:
    """``value`` (a PIL image, a data URL or base64 text) as a loaded PIL image; raises
    ``ImageProblem`` naming what is wrong with it and how to send it instead."""
    from PIL import Image

    if isinstance(value, Image.Image):
        _check_pixels(value, field, max_pixels)
        return value
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        data = _base64_bytes(value, field)
    else:
        raise ImageProblem(
            f"{field} must be an image, got {type(value).__name__}",
            f"send {field} as a PNG, JPEG or WebP data URL (data:image/png;base64,...) or, "
            "from Python, a PIL image.",
            f"<{type(value).__name__}>",
        )
    if len(data) > MAX_INPUT_BYTES:
        raise _too_many_bytes(field, len(data), MAX_INPUT_BYTES)
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Exception:
        if isinstance(value, str) and _PATH_LIKE.match(value.strip()):
            raise _not_opened(field, value.strip()) from None
        raise ImageProblem(
            f"{field} is not a picture file that could be read",
            "send a PNG, JPEG or WebP file, base64-encoded (a data URL or plain base64).",
            f"<{len(data)} bytes>",
        ) from None
    if image.format not in FORMATS:
        raise ImageProblem(
            f"{field} is a {image.format} file; only {', '.join(FORMATS)} are taken",
            "convert it to PNG, JPEG or WebP.",
            describe(image),
        )
    _check_pixels(image, field, max_pixels)
    try:
        image.load()
    except Exception:
        raise ImageProblem(
            f"{field} is a damaged {image.format} file",
            "send the file again, or save it anew as PNG.",
            describe(image),
        ) from None
    return image


def _base64_bytes(text: str, field: str) -> bytes:
    """The file bytes of a data URL or of plain base64 text; a path or a URL is refused."""
    stripped = text.strip()
    match = _DATA_URL.match(stripped)
    if match:
        payload = match.group("data")
    elif not _BASE64.match(stripped) or len(stripped) < 16:
        raise _not_opened(field, stripped)
    else:
        payload = stripped
    if len(payload) * 3 // 4 > MAX_INPUT_BYTES:
        raise _too_many_bytes(field, len(payload) * 3 // 4, MAX_INPUT_BYTES)
    try:
        padded = re.sub(r"\s", "", payload)
        padded += "=" * (-len(padded) % 4)
        altchars = b"-_" if ("-" in padded or "_" in padded) else None
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem(
            f"{field} is not valid base64",
            "encode the file's bytes with base64 (e.g. base64.b64encode(data).decode()).",
            f"<{len(payload)} characters>",
        ) from None


def _not_opened(field: str, text: str) -> ImageProblem:
    """The refusal of a text that is no picture, such as a path or a URL (never opened)."""
    return ImageProblem(
        f"{field} must hold the picture itself; file names, paths and URLs are not opened",
        f"send {field} as a data URL (data:image/png;base64,...) or base64 text of a PNG, "
        "JPEG or WebP file; in Python, pass a PIL image.",
        text[:40] + ("..." if len(text) > 40 else ""),
    )


def _check_pixels(image: Any, field: str, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise ImageProblem(
            f"{field} has {width}x{height} = {width * height} pixels; at most {max_pixels} "
            "are taken",
            f"scale the picture down to at most {max_pixels} pixels (e.g. "
            f"{_side(max_pixels)}x{_side(max_pixels)}).",
            describe(image),
        )


def _too_many_bytes(field: str, size: int, bound: int) -> ImageProblem:
    return ImageProblem(
        f"{field} is {size} bytes; at most {bound} are taken",
        "send a smaller file (scale the picture down, or save it as JPEG or WebP).",
        f"<{size} bytes>",
    )


def _side(pixels: int) -> int:
    return int(pixels**0.5)


def fitted_size(image: Any, multiple: int, min_side: int, max_side: int) -> tuple[int, int]:
    """The output size for an input image: its own size, scaled down to fit ``max_side`` if it
    is larger (the aspect kept), each side rounded to a multiple of ``multiple`` and held to
    ``min_side``."""
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    sides = []
    for side in (width * scale, height * scale):
        rounded = max(multiple, int(round(side / multiple)) * multiple)
        top = max_side - max_side % multiple
        sides.append(max(min_side, min(top, rounded)))
    return sides[0], sides[1]
