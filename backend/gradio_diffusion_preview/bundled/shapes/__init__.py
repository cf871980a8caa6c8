"""The bundled shapes model: a small text-to-image model that draws one shape in a named colour on
a plain background of another ("a red circle on a blue background"), trained from scratch by
``training/train_shapes.py`` on pictures drawn by ``draw``.

``model_dir()`` is its diffusers folder (``StableDiffusionPipeline`` layout, safetensors); the
diffusers backend loads it like any other local pipeline. ``grammar`` (its words and the held-out
split), ``draw`` and ``judge`` need only numpy and Pillow; ``evaluate`` runs the model.
"""

from __future__ import annotations

from pathlib import Path

MODEL_SIZE = 64  # the picture size the model was trained at, in pixels


def model_dir() -> Path:
    """The model's diffusers folder, inside the installed package."""
    return Path(__file__).resolve().parent / "model"
