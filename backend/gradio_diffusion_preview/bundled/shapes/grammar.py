"""What the bundled shapes model knows: its words, the scenes they describe, and the held-out split.

A scene is one shape in a named colour on a plain background of another named colour, with a size
and a position. A prompt names the shape, its colour and the background colour, and may name the
size (``small``, ``big``) and the position (``on the left``, ``at the top``, ...). What it leaves
out has a default: a medium size, in the middle. Sizes and positions vary a little within what
the words say, so every prompt still has many pictures, but the layout follows the words: a model
this small, trained this briefly, learns crisp shapes only when it need not also invent a layout
(with layouts drawn at random it drew blobs). Every word of the grammar is one token of the
model's tokenizer.

The held-out split: 40 of the 280 (shape, colour, background) combinations never appear in
training. They are chosen so that each shape, colour and background is held out equally often, and
each held-out pair of colours is seen with the other shapes, so the model must compose what it
learned rather than recall a picture.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

# sRGB values chosen far apart (the closest pair, orange and yellow, differ by 70 levels).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 145, 30),
    "yellow": (245, 215, 40),
    "green": (40, 160, 70),
    "blue": (40, 80, 220),
    "purple": (140, 60, 180),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart")
SIZES: tuple[str, ...] = ("small", "big")
POSITIONS: dict[str, str] = {  # position word -> the phrase that places the shape
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}

IMAGE_SIZE = 64
MARGIN = 3  # pixels kept clear between a shape and the image border
SIZE_RANGES = {"small": (14, 20), None: (26, 32), "big": (38, 46)}  # side of the shape's box, px
# Where the shape's centre lies in its free range (0: as far left/up as it fits, 1: right/down).
PLACE_RANGES = {"low": (0.0, 0.25), "high": (0.75, 1.0), "centre": (0.4, 0.6)}

FUNCTION_WORDS: tuple[str, ...] = ("a", "an", "on", "of", "at", "in", "the", "with", "background")
WORDS: tuple[str, ...] = (
    *FUNCTION_WORDS,
    *COLOURS,
    *SHAPES,
    *SIZES,
    *(phrase.split()[-1] for phrase in POSITIONS.values()),
)


@dataclass(frozen=True)
class Scene:
    """One picture: what is drawn, and which of its attributes the prompt names."""

    shape: str
    colour: str
    background: str
    size: int  # side of the shape's box, pixels
    centre: tuple[float, float]  # (x, y) in pixels
    size_word: str | None = None  # "small" / "big" if the prompt names it
    position: str | None = None  # a POSITIONS key if the prompt names it

    @property
    def combination(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.background)


def heldout_combinations() -> list[tuple[str, str, str]]:
    """The 40 (shape, colour, background) combinations never shown in training: shape ``s``
    with colour ``k`` on background ``k + 1 + s`` (mod 8), for every shape and colour."""
    colours = list(COLOURS)
    return [
        (shape, colours[k], colours[(k + 1 + s) % len(colours)])
        for s, shape in enumerate(SHAPES)
        for k in range(len(colours))
    ]


def training_combinations() -> list[tuple[str, str, str]]:
    """Every other combination of a shape, a colour and a different background colour."""
    held = set(heldout_combinations())
    return [
        (shape, colour, background)
        for shape in SHAPES
        for colour in COLOURS
        for background in COLOURS
        if colour != background and (shape, colour, background) not in held
    ]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def prompt_for(scene: Scene, template: int = 0) -> str:
    """The scene in plain English. ``template`` 0: "a red circle on a blue background";
    1: "a blue background with a red circle"; 2: "a red circle on blue"; as people also write
    them (issue #26), 3: "red circle, blue background"; 4: "blue background, red circle";
    5: "red circle on blue background" (no article)."""
    bare = " ".join(word for word in (scene.size_word, scene.colour, scene.shape) if word)
    thing = f"{_article(bare)} {bare}"
    place = POSITIONS[scene.position] if scene.position else ""
    ground = f"{_article(scene.background)} {scene.background} background"
    if template == 3:
        return ", ".join(
            (" ".join(p for p in (bare, place) if p), f"{scene.background} background")
        )
    if template == 4:
        return ", ".join(
            (f"{scene.background} background", " ".join(p for p in (bare, place) if p))
        )
    if template == 5:
        return " ".join(p for p in (bare, place, "on", scene.background, "background") if p)
    if template == 1:
        return " ".join(part for part in (ground, "with", thing, place) if part)
    if template == 2:
        return " ".join(part for part in (thing, place, "on", scene.background) if part)
    if place:
        return f"{thing} {place} of {ground}"
    return f"{thing} on {ground}"


def _place(rng: random.Random, position: str | None) -> tuple[float, float]:
    """Fractions (u, v) of the free range for a position word (the middle when unnamed)."""
    u, v = (rng.uniform(*PLACE_RANGES["centre"]) for _ in range(2))
    ranges = {
        "left": ("low", None),
        "right": ("high", None),
        "top": (None, "low"),
        "bottom": (None, "high"),
        "middle": ("centre", "centre"),
    }.get(position or "", (None, None))
    if ranges[0]:
        u = rng.uniform(*PLACE_RANGES[ranges[0]])
    if ranges[1]:
        v = rng.uniform(*PLACE_RANGES[ranges[1]])
    return u, v


def make_scene(
    rng: random.Random,
    combination: tuple[str, str, str],
    size_word: str | None = None,
    position: str | None = None,
) -> Scene:
    """A scene of ``combination`` with a size and position drawn to fit the words (if any)."""
    low, high = SIZE_RANGES[size_word]
    size = rng.randint(low, high)
    u, v = _place(rng, position)
    free = IMAGE_SIZE - 2 * MARGIN - size
    centre = (MARGIN + size / 2 + u * free, MARGIN + size / 2 + v * free)
    shape, colour, background = combination
    return Scene(shape, colour, background, size, centre, size_word, position)


def random_scene(
    rng: random.Random,
    combinations: list[tuple[str, str, str]],
    p_size: float = 0.5,
    p_position: float = 0.5,
    weights: Sequence[float] | None = None,
) -> Scene:
    """A scene of a random combination, sometimes with a size or a position word.
    ``weights`` (one per combination) makes some combinations likelier; without it every
    combination is as likely, drawn exactly as before the option existed."""
    size_word = rng.choice(SIZES) if rng.random() < p_size else None
    position = rng.choice(list(POSITIONS)) if rng.random() < p_position else None
    combination = rng.choices(combinations, weights)[0] if weights else rng.choice(combinations)
    return make_scene(rng, combination, size_word, position)
