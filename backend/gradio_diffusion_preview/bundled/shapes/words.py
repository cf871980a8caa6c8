"""How people write prompts for the bundled shapes model, mapped onto the words it knows.

The model knows the grammar's words (``grammar.WORDS``): eight colours, five shapes, two sizes and
five positions, plus a few little words. People write "crimson circle, navy background", "purple
star on orange" or "a tiny gold star in the centre". This module says which of their words mean
a grammar word (``SYNONYMS``: crimson -> red, navy -> blue, tiny -> small, centre -> middle, ...),
which words the model does not know (``unknown_words``), and what to tell someone whose prompt
names nothing it can draw (``prompt_hint``). The same table builds the tokenizer's normalizer
(``tokenizer_normalizer``), so the model itself reads "crimson" as "red" and a comma as a space
(a comma used to become the end-of-text token, which cut the prompt short), whatever calls it.

Plurals and counts are left unknown on purpose: the model draws one shape, so "two circles" is
reported as unknown words rather than silently drawn as one. Only standard library imports.
"""

from __future__ import annotations

import re

from .grammar import COLOURS, FUNCTION_WORDS, POSITIONS, SHAPES, SIZES, WORDS

# A word people write -> the grammar word it means. Colours only where the palette colour is what
# a reader expects to see; pink, grey and brown have no palette colour and stay unknown.
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("crimson", "scarlet", "ruby", "cherry", "maroon"), "red"),
    **dict.fromkeys(("tangerine", "amber"), "orange"),
    **dict.fromkeys(("gold", "golden", "lemon", "mustard"), "yellow"),
    **dict.fromkeys(("emerald", "lime", "jade", "olive"), "green"),
    **dict.fromkeys(("navy", "azure", "cobalt", "sapphire"), "blue"),
    **dict.fromkeys(("violet", "lilac", "lavender", "magenta", "plum"), "purple"),
    **dict.fromkeys(("ivory", "snow", "snowy"), "white"),
    **dict.fromkeys(("ebony", "jet", "charcoal"), "black"),
    **dict.fromkeys(("disc", "disk", "dot", "ring", "round"), "circle"),
    **dict.fromkeys(("tiny", "little", "mini"), "small"),
    **dict.fromkeys(("large", "huge", "giant", "bigger"), "big"),
    **dict.fromkeys(("centre", "center", "centered", "centred", "central"), "middle"),
    "upper": "top",
    "lower": "bottom",
    "against": "on",
}

# Anything but letters and spaces separates words: punctuation and digits have no token.
_SEPARATOR = r"[^\p{L}\s]+"


def vocabulary() -> dict[str, tuple[str, ...]]:
    """What the model understands, by kind: the palette colours, shapes, sizes and positions it
    draws, its little words, and every synonym it reads as one of them (for UI hints)."""
    return {
        "colours": tuple(COLOURS),
        "shapes": SHAPES,
        "sizes": SIZES,
        "positions": tuple(POSITIONS),
        "little words": FUNCTION_WORDS,
        "synonyms": tuple(SYNONYMS),
    }


def known_words() -> frozenset[str]:
    """Every word the model reads: the grammar's words and their synonyms."""
    return frozenset(WORDS) | frozenset(SYNONYMS)


def split_words(prompt: str) -> list[str]:
    """The prompt's words, lower case, punctuation and digits treated as spaces (as the tokenizer
    does). Non-ASCII letters are kept inside words, so "café" is one unknown word."""
    text = re.sub(r"[^\w\s]|\d|_", " ", (prompt or "").lower())
    return text.split()


def canonical_words(prompt: str) -> list[str]:
    """The prompt's words as the model reads them: synonyms replaced by grammar words."""
    return [SYNONYMS.get(word, word) for word in split_words(prompt)]


def unknown_words(prompt: str) -> list[str]:
    """The prompt's words the model does not know, in order, each once (it ignores them)."""
    known = known_words()
    return list(dict.fromkeys(w for w in split_words(prompt) if w not in known))


def prompt_hint(prompt: str) -> str | None:
    """A sentence for someone whose prompt the model cannot draw as meant, or None when it names
    a shape. A prompt naming no shape would come out as a plain colour (or nothing in
    particular); the hint says so and what to write instead."""
    words = canonical_words(prompt)
    if any(word in SHAPES for word in words):
        return None
    example = "for example 'a red circle on a blue background'"
    colours = [word for word in words if word in COLOURS]
    unknown = unknown_words(prompt)
    if colours:
        return (
            f"The shapes model draws one of {', '.join(SHAPES)}, and this prompt names none: "
            f"it would give a plain {colours[-1]} picture. Name a shape, {example}."
        )
    missing = f" It does not know {', '.join(repr(w) for w in unknown[:5])}." if unknown else ""
    return (
        "The shapes model draws one shape in one of eight colours "
        f"({', '.join(COLOURS)}) on a plain background, and this prompt names none of them."
        f"{missing} Try {example}."
    )


def tokenizer_normalizer() -> dict:
    """The ``normalizer`` of the model's ``tokenizer.json`` (Hugging Face ``tokenizers``
    format): lower case, punctuation and digits to spaces, each synonym to its grammar word,
    runs of spaces to one. Prompts in the grammar come out unchanged, so weights trained before
    it read them exactly as before."""
    targets: dict[str, list[str]] = {}
    for word, meaning in SYNONYMS.items():
        targets.setdefault(meaning, []).append(word)
    replaces = [
        {
            "type": "Replace",
            "pattern": {"Regex": rf"\b(?:{'|'.join(words)})\b"},
            "content": meaning,
        }
        for meaning, words in targets.items()
    ]
    return {
        "type": "Sequence",
        "normalizers": [
            {"type": "NFC"},
            {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": _SEPARATOR}, "content": " "},
            *replaces,
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Strip", "strip_left": True, "strip_right": True},
        ],
    }
