"""The preview frames every benchmark app shows: the same pictures for this project and each
baseline, so bytes and paint times compare like with like.

A run's frame for step ``k`` is a 64x64 picture (the latent-resolution preview the diffusers
backend makes for a 512 px image) that goes from noisy to smooth as the run advances, like an
x0 estimate does. The baselines show it at the displayed size, 512 px (``upscaled``).

The top-left 16x16 block is a marker: its red channel is ``MARK_SCALE * step`` (flat, so lossy
codecs keep it within a few levels), which lets the browser tell which step it painted.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
import PIL.Image

PREVIEW_SIDE = 64
DISPLAY_SIDE = 512
MARK_SIDE = 16
MARK_SCALE = 5
MAX_MARKED_STEPS = 255 // MARK_SCALE  # 51 steps per run keep the marker unambiguous


@lru_cache(maxsize=1)
def _base() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    smooth = PIL.Image.fromarray(coarse).resize((PREVIEW_SIDE,) * 2, PIL.Image.Resampling.BICUBIC)
    noise = rng.normal(0, 60, (PREVIEW_SIDE, PREVIEW_SIDE, 3))
    return np.asarray(smooth, dtype=np.float32), noise.astype(np.float32)


@lru_cache(maxsize=256)
def _shared_frame(step: int, total: int) -> np.ndarray:
    """The frame of ``step`` of ``total`` that every run shares (before its own pixel)."""
    smooth, noise = _base()
    left = 1.0 - step / max(total, 1)
    frame = np.clip(smooth + noise * left, 0, 255).astype(np.uint8)
    frame[:MARK_SIDE, :MARK_SIDE] = (MARK_SCALE * (step % (MAX_MARKED_STEPS + 1)), 128, 128)
    frame.setflags(write=False)
    return frame


def preview_frame(step: int, total: int, run: str = "") -> np.ndarray:
    """The ``PREVIEW_SIDE`` px ``HxWx3`` uint8 preview of ``step`` (1-based) of ``total``.

    ``run`` makes each run's frames its own (one pixel differs), as each real run's are: Gradio
    stores a frame under the hash of its bytes, so identical frames would share a cache file.
    Only the shared frames are cached: the apps make frames in the server process whose memory
    question 5 measures, and a cache of per-run frames (never reused) grew it by 12 MB."""
    frame = _shared_frame(step, total).copy()
    salt = zlib.crc32(run.encode())
    frame[-1, -1] = (salt & 255, (salt >> 8) & 255, (salt >> 16) & 255)
    frame.setflags(write=False)
    return frame


def upscaled(frame: np.ndarray, side: int = DISPLAY_SIDE) -> PIL.Image.Image:
    """``frame`` at the displayed size, as a user of plain Gradio would yield it."""
    return PIL.Image.fromarray(frame).resize((side, side), PIL.Image.Resampling.BICUBIC)


def step_of_mark(red: float) -> int:
    """The step a painted marker's red value stands for."""
    return round(red / MARK_SCALE)
