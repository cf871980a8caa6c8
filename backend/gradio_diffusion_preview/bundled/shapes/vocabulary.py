"""The words the bundled shapes model reads, from its own tokenizer file, and those of a prompt
it ignores.

The model's CLIP-style tokenizer knows a few dozen whole words (colours, shapes, sizes,
positions, "a", "on", "background"...). A word outside them becomes its end-of-text token,
so the model reads nothing after it: "an astronaut on the moon" draws a flat colour. A UI calls
``unknown_words(prompt)`` to say so before the run. The vocabulary is read from the tokenizer
file the model ships (``model/tokenizer/tokenizer.json``), so a retrained or extended tokenizer
needs no change here: this module is the one place that reads it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

_WORD = re.compile(r"[^\W\d_]+|\d|[^\s\w]+")
"""The tokenizer's own split: runs of letters, single digits, runs of punctuation."""
_END_OF_WORD = "</w>"


def _tokenizer_file() -> Path:
    from . import model_dir

    return model_dir() / "tokenizer" / "tokenizer.json"


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every whole word the model's tokenizer knows (lowercase; single letters excluded: a
    word spelled out letter by letter is not one the model was trained on)."""
    vocab = json.loads(_tokenizer_file().read_text(encoding="utf-8"))["model"]["vocab"]
    words = (token.removesuffix(_END_OF_WORD) for token in vocab if token.endswith(_END_OF_WORD))
    return frozenset(word for word in words if len(word) > 1 or word == "a")


def unknown_words(prompt: str) -> list[str]:
    """The words and marks of ``prompt`` the model does not read, in order, each once.

    Punctuation counts too: the model knows no comma, so "blue circle, red background" is read
    as "blue circle" and the rest ignored."""
    known = vocabulary()
    seen: list[str] = []
    for word in _WORD.findall(prompt.lower()):
        if word not in known and word not in seen:
            seen.append(word)
    return seen


def drawable_words() -> list[str]:
    """The vocabulary sorted, for a hint that lists what the model reads."""
    return sorted(vocabulary())
