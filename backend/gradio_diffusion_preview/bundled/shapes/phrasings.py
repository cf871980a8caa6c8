"""Held-out phrasings: prompts written as people write them (issue #26), for the evaluation only.

Every prompt here describes a held-out combination (never drawn in training) in a style the
training text never uses: colour synonyms (crimson, navy, gold, violet, ...), no articles,
commas, capitals and full stops, the background first, "tiny" and "in the centre". So neither
the prompt nor what the tokenizer makes of it was ever a training prompt. Each comes with the
scene it asks for, which the judge compares the picture with.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .grammar import POSITIONS, Scene, heldout_combinations, make_scene
from .words import SYNONYMS

PHRASING_SEED = 26  # the scenes' sizes and positions (not a sampling seed)

_SYNONYMS_OF: dict[str, list[str]] = {}
for _word, _meaning in SYNONYMS.items():
    _SYNONYMS_OF.setdefault(_meaning, []).append(_word)


def _syn(word: str, rng: random.Random) -> str:
    """A synonym of a palette colour (the colour itself for white and black half the time)."""
    return rng.choice(_SYNONYMS_OF.get(word, [word]))


def _a(words: str) -> str:
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


_PLACE = {**POSITIONS, "middle": "in the centre"}

# (size word, position) each style names, and the prompt it writes for a scene.
Style = tuple[str | None, bool, Callable[[Scene, random.Random], str]]
STYLES: tuple[Style, ...] = (
    (None, False, lambda s, r: f"{s.colour} {s.shape}, {s.background} background"),
    (None, False, lambda s, r: f"{s.colour} {s.shape} on {s.background}"),
    (
        None,
        False,
        lambda s, r: _a(f"{_syn(s.colour, r)} {s.shape} on {_a(_syn(s.background, r))} background"),
    ),
    (
        None,
        False,
        lambda s, r: _a(f"{_syn(s.colour, r)} {s.shape} on {_syn(s.background, r)}.").capitalize(),
    ),
    (None, False, lambda s, r: f"{s.background} background, {s.colour} {s.shape}"),
    ("small", False, lambda s, r: f"a tiny {s.colour} {s.shape} on {s.background}"),
    (
        None,
        True,
        lambda s, r: f"{s.colour} {s.shape} {_PLACE[s.position]}, {s.background} background",
    ),  # noqa: E501
    ("big", False, lambda s, r: f"Big {s.colour} {s.shape}, {_syn(s.background, r)} background!"),
    (
        None,
        True,
        lambda s, r: f"{s.background} background with {s.colour} {s.shape} {_PLACE[s.position]}",
    ),  # noqa: E501
    (None, False, lambda s, r: f"{s.colour} {s.shape} against {_a(s.background)} background"),
)


def heldout_phrasings() -> list[tuple[str, Scene]]:
    """One prompt per held-out combination (40), the styles taken in turn, plus a second prompt
    naming a position for every fourth combination (10): 50 prompts with their scenes."""
    rng = random.Random(PHRASING_SEED)
    result = []
    positions = list(POSITIONS)
    for index, combination in enumerate(heldout_combinations()):
        for extra in (False, True):
            if extra and index % 4:
                continue
            style = STYLES[index % len(STYLES)] if not extra else STYLES[6 + 2 * (index % 8 > 3)]
            size_word, placed, write = style
            position = rng.choice(positions) if placed else None
            scene = make_scene(rng, combination, size_word, position)
            result.append((write(scene, rng), scene))
    return result
