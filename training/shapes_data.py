"""Training data for the shapes model: scenes drawn from the training combinations, and the
prompts that describe them (in six phrasings, with and without articles and commas; sometimes
with an unknown word slipped in, so the model learns what each word means rather than one fixed
sentence)."""

from __future__ import annotations

import random
import string
from dataclasses import replace

import numpy as np

from gradio_diffusion_preview.bundled.shapes.draw import draw_array
from gradio_diffusion_preview.bundled.shapes.grammar import (
    Scene,
    prompt_for,
    random_scene,
    training_combinations,
)

P_SIZE, P_POSITION = 0.5, 0.5  # scenes with a size word (small, big) / a position word
P_SAY_MIDDLE = 0.5  # "in the middle" is the default, so the prompt says it only sometimes
# "a red circle on a blue background", "a blue background with a red circle", "... on blue",
# "red circle, blue background", "blue background, red circle", "red circle on blue background"
TEMPLATE_WEIGHTS = (0.35, 0.15, 0.15, 0.15, 0.1, 0.1)
P_EMPTY = 0.1  # the empty prompt, for classifier-free guidance
P_STRAY_WORD = 0.1  # an unknown word somewhere in the prompt, to be ignored


def draw_batch(
    rng: random.Random, count: int, favour: dict[str, float] | None = None
) -> tuple[np.ndarray, list[Scene]]:
    """``count`` training scenes and their pictures as ``(N, 64, 64, 3)`` uint8. ``favour``
    (shape -> weight, e.g. ``{"star": 3}``) draws those shapes' training combinations that many
    times as often as the others (the model's worst shapes); held-out combinations are never
    drawn either way."""
    combinations = training_combinations()
    weights = [favour.get(shape, 1.0) for shape, _, _ in combinations] if favour else None
    scenes = [random_scene(rng, combinations, P_SIZE, P_POSITION, weights) for _ in range(count)]
    return np.stack([draw_array(scene) for scene in scenes]), scenes


def images_to_tensor(images: np.ndarray):
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [-1, 1]."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def training_prompt(rng: random.Random, scene: Scene) -> str:
    """A prompt for a training scene, varied as the module docstring says."""
    if rng.random() < P_EMPTY:
        return ""
    described = scene
    if scene.position == "middle" and rng.random() >= P_SAY_MIDDLE:
        described = replace(scene, position=None)
    template = rng.choices(range(len(TEMPLATE_WEIGHTS)), TEMPLATE_WEIGHTS)[0]
    words = prompt_for(described, template).split()
    if rng.random() < P_STRAY_WORD and len(words) < 10:
        stray = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 3)))
        words.insert(rng.randint(0, len(words)), stray)
    return " ".join(words)
