"""Drawing scenes (numpy and Pillow only): the training pictures and the evaluator's templates.

Every shape is an outline in a unit box, stretched to fill the box it is drawn in, so a shape of
size ``s`` covers exactly an ``s`` x ``s`` box. Pictures are drawn four times larger and scaled
down with a box filter, which gives clean anti-aliased edges.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from .grammar import COLOURS, IMAGE_SIZE, Scene

SUPERSAMPLE = 4
Outline = list[tuple[float, float]]


def _fit_unit_box(points: Outline) -> Outline:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    return [((x - x0) / (x1 - x0), (y - y0) / (y1 - y0)) for x, y in points]


STAR_INNER = 0.45  # the drawn star's inner radius, of the outer: legible when small


@cache
def outline(shape: str, variant: float | None = None) -> tuple[tuple[float, float], ...] | None:
    """The shape's outline in the unit box (y down), or None for the circle (an ellipse).

    ``variant`` is for the judge's other outlines: a star's inner radius (the drawn star has
    ``STAR_INNER``; thinner-armed stars are stars too), and the arm width of a ``"cross"`` (no
    grammar shape: the judge matches it so that a cross is not taken for a square or circle)."""
    if shape == "circle":
        return None
    if shape == "square":
        points: Outline = [(0, 0), (1, 0), (1, 1), (0, 1)]
    elif shape == "triangle":
        points = [(0.5, 0), (1, 1), (0, 1)]
    elif shape == "star":  # five points
        inner = variant or STAR_INNER
        points = [
            (
                (1.0 if i % 2 == 0 else inner) * math.sin(i * math.pi / 5),
                -(1.0 if i % 2 == 0 else inner) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
    elif shape == "cross":  # a plus sign, arms ``variant`` of the box wide
        low, high = (1 - (variant or 1 / 3)) / 2, (1 + (variant or 1 / 3)) / 2
        points = [
            (low, 0), (high, 0), (high, low), (1, low), (1, high), (high, high),
            (high, 1), (low, 1), (low, high), (0, high), (0, low), (low, low),
        ]  # fmt: skip
    elif shape == "heart":  # the classic parametric heart curve
        points = [
            (
                16 * math.sin(t) ** 3,
                -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)),
            )
            for t in (2 * math.pi * i / 96 for i in range(96))
        ]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return tuple(_fit_unit_box(points))


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, ...], fill, variant=None
) -> None:
    x0, y0, x1, y1 = box
    points = outline(shape, variant)
    if points is None:
        draw.ellipse(box, fill=fill)
    else:
        draw.polygon([(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in points], fill=fill)


def draw_scene(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    """The scene as an RGB picture of ``size`` pixels (scene coordinates are for IMAGE_SIZE)."""
    scale = SUPERSAMPLE * size / IMAGE_SIZE
    big = Image.new("RGB", (size * SUPERSAMPLE,) * 2, COLOURS[scene.background])
    cx, cy = scene.centre
    half = scene.size / 2
    box = tuple(v * scale for v in (cx - half, cy - half, cx + half, cy + half))
    _draw_shape(ImageDraw.Draw(big), scene.shape, box, COLOURS[scene.colour])
    return big.resize((size, size), Image.BOX)


def draw_array(scene: Scene) -> np.ndarray:
    """The scene as an ``(H, W, 3)`` uint8 array."""
    return np.asarray(draw_scene(scene))


def shape_coverage(
    shape: str,
    width: int,
    height: int,
    box: tuple[float, float, float, float] | None = None,
    variant: float | None = None,
) -> np.ndarray:
    """How much of each pixel of a ``width`` x ``height`` canvas the shape covers (0..1) when
    drawn in ``box`` (x0, y0, x1, y1 in pixels, fractions allowed; default: the whole canvas);
    ``variant`` as for ``outline``."""
    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    box = box or (0, 0, width, height)
    _draw_shape(ImageDraw.Draw(big), shape, tuple(v * SUPERSAMPLE for v in box), 255, variant)
    return np.asarray(big.resize((width, height), Image.BOX), dtype=np.float32) / 255
