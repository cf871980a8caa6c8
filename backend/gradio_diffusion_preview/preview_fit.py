"""Previews sized for the page: a component can ask for smaller or lighter previews than
``stream`` made (visitors on slow links), re-encoded from the data URL it received."""

from __future__ import annotations

import base64
import binascii
import io
from functools import lru_cache

import PIL.Image

from .preview_encoding import DEFAULT_QUALITY, encode_preview


def fit_preview(url: str | None, max_side: int | None, quality: int | None) -> str | None:
    """``url`` (a ``data:image/...;base64,`` preview) with no side over ``max_side`` and JPEG
    ``quality``; unchanged when it already fits and no quality is asked for, or when it is not
    a data URL this can read."""
    if not url or not url.startswith("data:image/"):
        return url
    return _fit(url, max_side, quality)


@lru_cache(maxsize=16)  # heartbeats repeat the last preview: encode it once
def _fit(url: str, max_side: int | None, quality: int | None) -> str:
    try:
        payload = base64.b64decode(url.partition(",")[2], validate=True)
        image = PIL.Image.open(io.BytesIO(payload))
        image.load()
    except (binascii.Error, OSError, ValueError):
        return url
    too_big = max_side is not None and max(image.size) > max_side
    if not too_big and quality is None:
        return url
    return encode_preview(
        image, max(image.size) if max_side is None else max_side, quality=quality or DEFAULT_QUALITY
    )
