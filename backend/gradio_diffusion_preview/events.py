"""The events a backend's ``generate`` yields, in this fixed order:

``Started`` once, then ``Step`` for each denoising step (with a preview when the backend can make
one), then either ``Finished`` with the final images or a single ``Failed``. A cancelled run simply
stops yielding. Everything downstream (coalescing, progress, the component) reads only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import PIL.Image

PreviewImage = PIL.Image.Image | np.ndarray
"""A preview: a PIL image or an ``HxWx3`` ``uint8`` array (cheaper to hand over from a tensor)."""

FailureReason = Literal[
    "invalid_request",
    "model_not_found",
    "out_of_memory",
    "remote_error",
    "backend_error",
]


@dataclass(frozen=True)
class Started:
    """The run has begun: how many steps it will take and what it will make."""

    total_steps: int
    model: str
    seeds: list[int]
    width: int
    height: int
    num_images: int = 1
    preview_size: tuple[int, int] | None = None
    """(width, height) of every preview this run will send; ``None`` when it sends none."""


@dataclass(frozen=True)
class Step:
    """Denoising step ``step`` (1-based) of ``total_steps`` is done."""

    step: int
    total_steps: int
    preview: PreviewImage | None = None


@dataclass(frozen=True)
class Finished:
    """The final images, one per seed, with whatever the backend wants to record about them."""

    images: list[PIL.Image.Image]
    seeds: list[int]
    metadata: dict[str, Any] = field(default_factory=dict)
    early: bool = False
    """True when the run was asked to finish early and these are its current estimate."""


@dataclass(frozen=True)
class Failed:
    """The run failed. ``message`` names the problem and the fix, for a person to read."""

    message: str
    reason: FailureReason = "backend_error"


GenerationEvent = Started | Step | Finished | Failed
