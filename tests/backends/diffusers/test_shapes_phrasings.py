"""The bundled shapes model reads prompts as people write them (issue #26): its tokenizer maps
colour synonyms to the palette and punctuation to spaces (a comma used to end the prompt), the
grammar prompts still tokenize as before (so weights trained before read them unchanged),
``words`` names the unknown words and hints when a prompt names nothing drawable, the held-out
phrasings are never training text, and the judge accepts thin-armed stars, rejects crosses and
finds no shape in specks of noise. Needs only ``tokenizers``, numpy and Pillow (no torch)."""

from __future__ import annotations

import itertools
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gradio_diffusion_preview.bundled.shapes import model_dir
from gradio_diffusion_preview.bundled.shapes.grammar import (
    COLOURS,
    WORDS,
    heldout_combinations,
    make_scene,
    prompt_for,
    random_scene,
    training_combinations,
)
from gradio_diffusion_preview.bundled.shapes.judge import judge
from gradio_diffusion_preview.bundled.shapes.phrasings import heldout_phrasings
from gradio_diffusion_preview.bundled.shapes.words import (
    canonical_words,
    prompt_hint,
    tokenizer_normalizer,
    unknown_words,
    vocabulary,
)

TRAINING = Path(__file__).resolve().parents[3] / "training"
# The normalizer the tokenizer had before issue #26 (transformers' CLIPTokenizer's own).
OLD_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "NFC"},
        {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
        {"type": "Lowercase"},
    ],
}


def tokenizer(normalizer: dict | None = None):
    from tokenizers import Tokenizer

    spec = json.loads((model_dir() / "tokenizer" / "tokenizer.json").read_text())
    if normalizer is not None:
        spec["normalizer"] = normalizer
    read = Tokenizer.from_str(json.dumps(spec))
    read.no_padding()
    return read


def ids(prompt: str, normalizer: dict | None = None) -> list[int]:
    return tokenizer(normalizer).encode(prompt).ids


def test_the_shipped_tokenizer_reads_prompts_through_the_words_table():
    spec = json.loads((model_dir() / "tokenizer" / "tokenizer.json").read_text())
    assert spec["normalizer"] == tokenizer_normalizer()
    index = json.loads((model_dir() / "model_index.json").read_text())
    # transformers' CLIPTokenizer would replace the normalizer with its own
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]


def test_a_comma_no_longer_ends_the_prompt():
    end = 1  # <|endoftext|>
    written = ids("blue circle, red background")
    assert written.count(end) == 1 and written[-1] == end
    assert written == ids("blue circle red background")
    assert ids("blue circle, red background", OLD_NORMALIZER).count(end) == 2  # the bug


def test_synonyms_capitals_and_punctuation_read_as_the_grammar_words():
    plain = ids("a red circle on a blue background")
    for written in (
        "a crimson circle on a navy background",
        "A Scarlet circle on a COBALT background.",
        "a red circle on a blue background!!",
        "a red circle  on a\tblue background 2",
    ):
        assert ids(written) == plain, written
    assert ids("a tiny gold star in the centre") == ids("a small yellow star in the middle")
    assert ids("violet heart") == ids("purple heart")


def test_grammar_prompts_tokenize_exactly_as_before():
    """Backward compatible: weights trained with the old tokenizer read grammar prompts as
    they were trained on them."""
    rng = random.Random(3)
    combinations = training_combinations() + heldout_combinations()
    for _ in range(300):
        scene = random_scene(rng, combinations)
        for template in range(3):
            prompt = prompt_for(scene, template)
            assert ids(prompt) == ids(prompt, OLD_NORMALIZER), prompt


def test_every_word_and_synonym_is_one_token():
    vocab = vocabulary()
    for word in (*WORDS, *vocab["synonyms"]):
        assert len(ids(word)) == 3, word  # <start> word <end>
    assert set(vocab["colours"]) == set(COLOURS) and "crimson" in vocab["synonyms"]


def test_unknown_words_are_named_and_plurals_and_counts_stay_unknown():
    assert unknown_words("a crimson circle, on a navy background.") == []
    assert unknown_words("two circles and a pink cat, please") == [
        "two",
        "circles",
        "and",
        "pink",
        "cat",
        "please",
    ]
    assert unknown_words("") == [] and unknown_words("3 stars!") == ["stars"]
    assert canonical_words("Tiny GOLD star, centre") == ["small", "yellow", "star", "middle"]


def test_a_prompt_naming_no_shape_gets_a_hint_not_a_silent_flat_colour():
    assert prompt_hint("red circle, blue background") is None
    assert prompt_hint("a crimson disc on navy") is None
    flat = prompt_hint("something navy")
    assert flat and "plain blue" in flat and "circle" in flat
    nothing = prompt_hint("a cat in space")
    assert nothing and "'cat'" in nothing and "a red circle on a blue background" in nothing
    assert prompt_hint("") and "none of them" in prompt_hint("")


def test_training_text_covers_the_new_phrasings_in_grammar_words():
    sys.path.insert(0, str(TRAINING))
    from shapes_data import TEMPLATE_WEIGHTS

    named = make_scene(random.Random(0), ("star", "red", "orange"), "small", "left")
    assert prompt_for(named, 3) == "small red star on the left, orange background"
    assert prompt_for(named, 4) == "orange background, small red star on the left"
    assert prompt_for(named, 5) == "small red star on the left on orange background"
    assert len(TEMPLATE_WEIGHTS) == 6
    rng = random.Random(1)
    for template in range(6):
        scene = random_scene(rng, training_combinations(), 0.7, 0.7)
        assert set(canonical_words(prompt_for(scene, template))) <= set(WORDS)


def test_favoured_shapes_are_drawn_more_often_and_held_out_combinations_never():
    sys.path.insert(0, str(TRAINING))
    from shapes_data import draw_batch

    plain = draw_batch(random.Random(3), 400)[1]
    favoured = draw_batch(random.Random(3), 400, {"star": 3, "triangle": 2})[1]
    stars = [sum(scene.shape == "star" for scene in scenes) for scenes in (plain, favoured)]
    assert stars[1] > 1.4 * stars[0]  # weights: 3/8 of the draws expected, against 1/5
    held = set(heldout_combinations())
    assert not {(s.shape, s.colour, s.background) for s in favoured} & held
    # without favour the drawings are random_scene's, as before the option existed
    rng = random.Random(3)
    assert plain == [random_scene(rng, training_combinations(), 0.5, 0.5) for _ in range(400)]


def test_the_checkpoint_choice_counts_position_and_favour_names_a_bad_shape():
    sys.path.insert(0, str(TRAINING))
    from train_shapes import POSITION_BARS, parse_favour, quality

    centred = {"colour": 1.0, "background": 1.0, "shape": 0.85, "size": 1.0, "position": 0.5}
    placed = {**centred, "shape": 0.8, "position": 0.82}
    assert quality(placed, POSITION_BARS) > quality(centred, POSITION_BARS)
    # without --count-position the choice is the shipped targets': shape wins, position unseen
    assert quality(placed) < quality(centred)
    assert parse_favour("star=3, triangle") == {"star": 3.0, "triangle": 2.0}
    with pytest.raises(Exception, match="'hexagon' is not a shape"):
        parse_favour("hexagon=2")


def test_heldout_phrasings_are_many_varied_and_never_training_text():
    sys.path.insert(0, str(TRAINING))
    from shapes_data import training_prompt

    phrasings = heldout_phrasings()
    assert len(phrasings) >= 40
    prompts = [prompt for prompt, _ in phrasings]
    assert len(set(prompts)) == len(prompts)
    held = set(heldout_combinations())
    assert all(scene.combination in held for _, scene in phrasings)
    assert any("," in p for p in prompts) and any(p.endswith(".") for p in prompts)
    assert any(set(p.lower().split()) & set(vocabulary()["synonyms"]) for p in prompts)
    assert any(p.split()[0] not in ("a", "an", "A", "An") for p in prompts)
    # the tokens of every phrasing name what its scene asks, and no training prompt has them
    rng = random.Random(0)
    scenes = [make_scene(rng, c) for c in training_combinations()]
    trained = {tuple(ids(training_prompt(rng, rng.choice(scenes)))) for _ in range(5000)}
    for prompt, scene in phrasings:
        words = canonical_words(prompt)
        assert {scene.shape, scene.colour, scene.background} <= set(words), prompt
        assert unknown_words(prompt) == [], prompt
        assert tuple(ids(prompt)) not in trained


# -- the judge ---------------------------------------------------------------------------------


def _polygon(points, size: float, ground=(40, 80, 220), ink=(220, 40, 40)) -> Image.Image:
    scale = 4
    big = Image.new("RGB", (64 * scale,) * 2, ground)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    unit = [((x - min(xs)) / width, (y - min(ys)) / height) for x, y in points]
    x0 = (32 - size / 2) * scale
    drawn = [(x0 + x * size * scale, x0 + y * size * scale) for x, y in unit]
    ImageDraw.Draw(big).polygon(drawn, fill=ink)
    return big.resize((64, 64), Image.BOX)


def _star(inner: float) -> list[tuple[float, float]]:
    return [
        ((1 if i % 2 == 0 else inner) * math.sin(i * math.pi / 5),
         -(1 if i % 2 == 0 else inner) * math.cos(i * math.pi / 5))
        for i in range(10)
    ]  # fmt: skip


def _cross(arm: float) -> list[tuple[float, float]]:
    lo, hi = (1 - arm) / 2, (1 + arm) / 2
    return [
        (lo, 0), (hi, 0), (hi, lo), (1, lo), (1, hi), (hi, hi),
        (hi, 1), (lo, 1), (lo, hi), (0, hi), (0, lo), (lo, lo),
    ]  # fmt: skip


@pytest.mark.parametrize(("inner", "size"), itertools.product((0.38, 0.3, 0.25, 0.2), (16, 30)))
def test_judge_accepts_thin_armed_stars(inner, size):
    got = judge(_polygon(_star(inner), size))
    assert got.shape == "star" and got.colour == "red" and got.background == "blue", got


@pytest.mark.parametrize(("arm", "size"), itertools.product((1 / 3, 0.45, 0.6), (16, 30)))
def test_judge_takes_a_cross_for_no_shape(arm, size):
    got = judge(_polygon(_cross(arm), size))
    assert got.shape is None and got.colour == "red", got


def test_judge_finds_no_shape_in_specks_of_noise():
    rng = np.random.default_rng(0)
    for _ in range(20):
        picture = np.full((64, 64, 3), COLOURS["blue"], dtype=np.float32)
        picture += rng.normal(0, 12, picture.shape)
        y, x = rng.integers(4, 56, 2)
        picture[y : y + 4, x : x + 4] = COLOURS["red"]  # a 4 x 4 speck: 16 px
        got = judge(np.clip(picture, 0, 255).astype(np.uint8))
        assert got.shape is None and got.size is None and got.centre is None, got
        assert got.background == "blue"
