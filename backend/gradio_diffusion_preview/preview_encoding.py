"""Encodes a preview as a small in-memory image data URL: sized for display, never a file."""

from __future__ import annotations

import base64
import io
from typing import Literal

import numpy as np
import PIL.Image

from .events import PreviewImage

DEFAULT_MAX_SIDE = 512


def to_pil(image: PreviewImage) -> PIL.Image.Image:
    """A PIL RGB image from a PIL image or an ``HxWx3`` (or ``HxW``) ``uint8`` array."""
    if isinstance(image, PIL.Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"preview arrays must be uint8, got {array.dtype}; scale to 0..255 first")
    return PIL.Image.fromarray(array).convert("RGB")


def encode_preview(
    image: PreviewImage,
    max_side: int = DEFAULT_MAX_SIDE,
    fmt: Literal["jpeg", "webp"] = "jpeg",
    quality: int = 80,
) -> str:
    """A ``data:image/...;base64,...`` URL of ``image``, downscaled so no side exceeds
    ``max_side`` (never upscaled: the browser scales small latent previews smoothly)."""
    pil = to_pil(image)
    if max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
        pil = pil.resize(size, PIL.Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt.upper(), quality=quality)
    return f"data:image/{fmt};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
