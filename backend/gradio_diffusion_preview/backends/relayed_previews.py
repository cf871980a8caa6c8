"""Previews a backend relays from elsewhere (a service, a Serve replica): the size it announces
in ``Started.preview_size`` before it sees the first one, and each preview brought to that size.

A relaying backend often has to announce its previews before the other side has said anything
about them (the run waits in the service's queue, the service sends them at 1/8 of the image),
and the contract wants every preview at the announced size. So it announces the image's size
shrunk to fit a longest side, and resizes what comes.
"""

from __future__ import annotations

import numpy as np
import PIL.Image


def fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled down to fit ``max_side``, keeping the aspect ratio."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(image: PIL.Image.Image | np.ndarray, size: tuple[int, int] | None) -> PIL.Image.Image:
    """``image`` (a PIL image, or an HxWx3 uint8 array) at ``size``; as it is when ``size`` is
    ``None`` or already its size."""
    if isinstance(image, np.ndarray):
        image = PIL.Image.fromarray(image)
    if size is None or image.size == tuple(size):
        return image
    return image.resize(tuple(size), PIL.Image.Resampling.BILINEAR)
