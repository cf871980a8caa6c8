"""Judging a picture (numpy and Pillow only): which background colour, which shape colour, which
shape, and its size and position, read from the pixels alone.

1. The background colour is the median of the one-pixel border (shapes keep clear of it).
2. Pixels far from it are the shape; its colour ("ink") is the median of the half of them
   farthest from the background. Each pixel's coverage by the shape is read off where its colour
   lies between background and ink (anti-aliased edges give fractions).
3. The largest connected piece (coverage over one half) is the shape. Each shape's outline is
   drawn in the square box that gives it the piece's centroid and spread, and the best overlap
   (soft intersection over union of the coverages) names the shape, unless it matches poorly
   (below ``MIN_IOU``: a blob is no circle) or other pieces add more than ``MAX_STRAY`` of its
   area (then there is no single clear shape). Either way the shape is judged ``None``, which
   is wrong for every prompt. Stars with thinner arms than the drawn one are matched too (the
   eye calls them stars), and crosses, which name no shape: a cross is judged None, not a
   square or circle. A piece under ``MIN_AREA`` pixels is no shape (noise on a blank picture).
4. Colours are named by the nearest palette colour (RGB distance).

On the drawings themselves every judgement is right (the tests check it over many scenes, with
and without added noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from .draw import shape_coverage
from .grammar import COLOURS, IMAGE_SIZE, SHAPES, SIZE_RANGES, Scene

MIN_IOU = 0.8
MAX_STRAY = 0.25
# The outlines matched, as (shape named, outline, variant): the grammar's shapes as drawn, stars
# with thinner arms (the eye reads them as stars; the model draws them so), and crosses, which
# name no grammar shape: a cross matches a cross better than a square or circle and is judged
# None instead of passing for one.
OUTLINES: tuple[tuple[str | None, str, float | None], ...] = (
    *((shape, shape, None) for shape in SHAPES),
    ("star", "star", 0.35),
    ("star", "star", 0.27),
    (None, "cross", 1 / 3),
    (None, "cross", 0.5),
    (None, "cross", 0.6),
)
# Less than half the area of the smallest shape drawn (a small star, 14 px) is no shape: noise on
# a blank picture must not be judged "a tiny shape".
MIN_AREA = 30
SHAPE_DISTANCE = 40.0  # RGB distance from the background that counts as shape
SMALL_BELOW = (SIZE_RANGES["small"][1] + SIZE_RANGES[None][0]) / 2  # 23 px
BIG_ABOVE = (SIZE_RANGES[None][1] + SIZE_RANGES["big"][0]) / 2  # 35 px
OFF_CENTRE = 2.0  # px the centre must lie past the middle to be left/right/top/bottom
MIDDLE_WITHIN = 6.0  # px from the middle for "in the middle"

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in _PALETTE_NAMES], dtype=np.float32)


@dataclass(frozen=True)
class Judgement:
    """What the picture shows (``None`` where it shows nothing clear)."""

    background: str
    colour: str | None
    shape: str | None
    size: float | None  # the longer side of the shape's box, px
    centre: tuple[float, float] | None  # of the shape's box, px
    iou: float  # how well the best outline matched
    best: str | None = None  # the best-matching outline, even when it matched poorly


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette name nearest to an RGB triple."""
    distances = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float32), axis=1)
    return _PALETTE_NAMES[int(np.argmin(distances))]


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected pieces of a boolean mask, as (row, column) index arrays, largest first."""
    height, width = mask.shape
    seen = np.zeros_like(mask)
    pieces = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, piece = [start], []
        while stack:
            y, x = stack.pop()
            piece.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        pieces.append(np.array(piece))
    return sorted(pieces, key=len, reverse=True)


@cache
def _unit_moments(shape: str, variant: float | None = None) -> tuple[float, float, float, float]:
    """Centroid and spread (x, y) of the shape drawn in the unit box, as fractions of the box."""
    coverage = shape_coverage(shape, 256, 256, variant=variant).astype(np.float64)
    grid = (np.arange(256) + 0.5) / 256
    mass = coverage.sum()
    mean_x = (coverage.sum(axis=0) * grid).sum() / mass
    mean_y = (coverage.sum(axis=1) * grid).sum() / mass
    spread_x = np.sqrt((coverage.sum(axis=0) * (grid - mean_x) ** 2).sum() / mass)
    spread_y = np.sqrt((coverage.sum(axis=1) * (grid - mean_y) ** 2).sum() / mass)
    return float(mean_x), float(mean_y), float(spread_x), float(spread_y)


def _match(
    coverage: np.ndarray, piece: np.ndarray
) -> tuple[str | None, float, tuple[float, ...], str]:
    """The shape the best of ``OUTLINES`` names (None for a cross), its soft IoU, its box
    (x0, y0, x1, y1) and the best grammar shape's name (even when a cross matched better).

    Each outline is placed in the square box (every shape is drawn in one) that gives it the
    piece's centroid and spread (the coverage-weighted mean and standard deviation of x and y):
    a sub-pixel fit that needs no edge finding, so it is not thrown by pointed tips or noise,
    and a stretched circle (an ellipse) does not pass for a circle."""
    height, width = coverage.shape
    near = np.zeros(coverage.shape, dtype=bool)
    near[piece[:, 0], piece[:, 1]] = True
    grown = near.copy()  # the piece and a one-pixel ring around it
    grown[1:] |= near[:-1]
    grown[:-1] |= near[1:]
    grown[:, 1:] |= near[:, :-1]
    grown[:, :-1] |= near[:, 1:]
    ours = np.where(grown, coverage, 0.0)
    mass = ours.sum()
    x_centres, y_centres = np.arange(width) + 0.5, np.arange(height) + 0.5
    mean_x = (ours.sum(axis=0) * x_centres).sum() / mass
    mean_y = (ours.sum(axis=1) * y_centres).sum() / mass
    # a pixel's own width adds 1/12 px^2 to the variance of a continuous shape
    var_x = (ours.sum(axis=0) * (x_centres - mean_x) ** 2).sum() / mass - 1 / 12
    var_y = (ours.sum(axis=1) * (y_centres - mean_y) ** 2).sum() / mass - 1 / 12
    spread_x, spread_y = np.sqrt(max(var_x, 0.01)), np.sqrt(max(var_y, 0.01))
    scores, boxes = [], []
    for _named, shape, variant in OUTLINES:
        unit_x, unit_y, unit_sx, unit_sy = _unit_moments(shape, variant)
        side = np.sqrt(spread_x * spread_y / (unit_sx * unit_sy))  # shapes are drawn in squares
        x0, y0 = mean_x - unit_x * side, mean_y - unit_y * side
        boxes.append((x0, y0, x0 + side, y0 + side))
        template = shape_coverage(shape, width, height, boxes[-1], variant)
        scores.append(
            float(np.minimum(ours, template).sum() / max(np.maximum(ours, template).sum(), 1e-6))
        )
    best = max(range(len(OUTLINES)), key=scores.__getitem__)
    shapes = [i for i, (named, _, _) in enumerate(OUTLINES) if named]
    best_shape = OUTLINES[max(shapes, key=scores.__getitem__)][0]
    return OUTLINES[best][0], scores[best], boxes[best], best_shape


def judge(image) -> Judgement:
    """Judge an RGB picture (a PIL image or an ``(H, W, 3)`` array) of any size; it is looked
    at in IMAGE_SIZE pixels."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    image = image.convert("RGB")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)
    pixels = np.asarray(image, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    ground = np.median(border, axis=0)
    background = nearest_colour(ground)
    far = np.linalg.norm(pixels - ground, axis=2)
    if (far > SHAPE_DISTANCE).sum() == 0:
        return Judgement(background, None, None, None, None, 0.0)
    core = far >= np.percentile(far[far > SHAPE_DISTANCE], 50)
    ink = np.median(pixels[core], axis=0)
    colour = nearest_colour(ink)
    direction = ink - ground
    coverage = np.clip((pixels - ground) @ direction / max(direction @ direction, 1e-6), 0, 1)
    pieces = _components(coverage > 0.5)
    if not pieces:
        return Judgement(background, colour, None, None, None, 0.0)
    main = pieces[0]
    if len(main) < MIN_AREA:
        return Judgement(background, colour, None, None, None, 0.0)
    named, iou, (x0, y0, x1, y1), best = _match(coverage, main)
    stray = sum(len(piece) for piece in pieces[1:] if len(piece) > 2)
    clear = iou >= MIN_IOU and stray <= MAX_STRAY * len(main)
    return Judgement(
        background,
        colour,
        named if clear else None,
        max(x1 - x0, y1 - y0),
        ((x0 + x1) / 2, (y0 + y1) / 2),
        iou,
        best,
    )


def position_of(judgement: Judgement) -> set[str]:
    """The position words that fit where the shape is (several may)."""
    if judgement.centre is None:
        return set()
    x, y = judgement.centre
    middle = IMAGE_SIZE / 2
    words = set()
    if x < middle - OFF_CENTRE:
        words.add("left")
    if x > middle + OFF_CENTRE:
        words.add("right")
    if y < middle - OFF_CENTRE:
        words.add("top")
    if y > middle + OFF_CENTRE:
        words.add("bottom")
    if abs(x - middle) <= MIDDLE_WITHIN and abs(y - middle) <= MIDDLE_WITHIN:
        words.add("middle")
    return words


def size_of(judgement: Judgement) -> str | None:
    """``small``, ``medium`` or ``big`` by the shape's box (None when there is no shape)."""
    if judgement.size is None:
        return None
    if judgement.size < SMALL_BELOW:
        return "small"
    return "big" if judgement.size > BIG_ABOVE else "medium"


@dataclass(frozen=True)
class Verdict:
    """Which of a scene's requested attributes a picture got right (None: not asked)."""

    colour: bool
    background: bool
    shape: bool
    size: bool | None
    position: bool | None


def verdict(scene: Scene, judgement: Judgement) -> Verdict:
    """Compare a judgement with what the scene's prompt asked for."""
    return Verdict(
        colour=judgement.colour == scene.colour,
        background=judgement.background == scene.background,
        shape=judgement.shape == scene.shape,
        size=None if scene.size_word is None else size_of(judgement) == scene.size_word,
        position=None if scene.position is None else scene.position in position_of(judgement),
    )
