"""The curated catalogue: current text-to-image models served by Inference Providers, and the
editing models they serve for image-to-image, with the defaults and limits their model cards
give.

It is what the backend offers when no models are configured and the Hub cannot be asked (offline,
or the live listing failed), and it gives live-listed models their names and defaults. Sources:
each model's card on the Hub (the diffusers example in it) and the Inference Providers task page
for text-to-image.
"""

from __future__ import annotations

from ...backend import ModelDefaults
from .settings import HfModel

_FLOW = {"size_multiple": 16, "min_size": 256, "max_size": 2048, "default_size": (1024, 1024)}
"""Flux and SD3-family transformers: sides in multiples of 16 (VAE factor 8 x patch 2)."""

CATALOGUE: tuple[HfModel, ...] = (
    HfModel(
        id="black-forest-labs/FLUX.1-schnell",
        name="FLUX.1 [schnell]",
        description="Black Forest Labs' fast distilled Flux: 1 to 4 steps, no guidance, no "
        "negative prompt. Apache-2.0.",
        defaults=ModelDefaults(
            default_steps=4, steps_range=(1, 4), guidance=False, negative_prompt=False, **_FLOW
        ),
    ),
    HfModel(
        id="black-forest-labs/FLUX.1-dev",
        name="FLUX.1 [dev]",
        description="Black Forest Labs' guidance-distilled Flux: about 28 to 50 steps, "
        "guidance 3.5, no negative prompt. Non-commercial licence.",
        defaults=ModelDefaults(
            default_steps=28,
            steps_range=(1, 100),
            default_guidance=3.5,
            guidance_range=(0.0, 20.0),
            negative_prompt=False,
            **_FLOW,
        ),
    ),
    HfModel(
        id="stabilityai/stable-diffusion-3.5-large",
        name="Stable Diffusion 3.5 Large",
        description="Stability AI's 8B MMDiT: 28 steps, guidance 3.5, negative prompt.",
        defaults=ModelDefaults(
            default_steps=28, steps_range=(1, 100), default_guidance=3.5, **_FLOW
        ),
    ),
    HfModel(
        id="stabilityai/stable-diffusion-3.5-large-turbo",
        name="Stable Diffusion 3.5 Large Turbo",
        description="SD 3.5 Large distilled (ADD) to 4 steps without guidance.",
        defaults=ModelDefaults(
            default_steps=4, steps_range=(1, 8), guidance=False, negative_prompt=False, **_FLOW
        ),
    ),
    HfModel(
        id="stabilityai/stable-diffusion-3.5-medium",
        name="Stable Diffusion 3.5 Medium",
        description="Stability AI's 2.5B MMDiT-X: 40 steps, guidance 4.5.",
        defaults=ModelDefaults(
            default_steps=40, steps_range=(1, 100), default_guidance=4.5, **_FLOW
        ),
    ),
    HfModel(
        id="stabilityai/stable-diffusion-xl-base-1.0",
        name="Stable Diffusion XL 1.0",
        description="SDXL base: about 30 steps, guidance 5 to 8, negative prompt, 1024 px.",
        defaults=ModelDefaults(
            default_steps=30,
            steps_range=(1, 100),
            default_guidance=7.0,
            size_multiple=8,
            min_size=512,
            max_size=1536,
            default_size=(1024, 1024),
        ),
    ),
    HfModel(
        id="stabilityai/sdxl-turbo",
        name="SDXL Turbo",
        description="SDXL distilled (ADD) to 1 to 4 steps at 512 px, without guidance.",
        defaults=ModelDefaults(
            default_steps=1,
            steps_range=(1, 4),
            guidance=False,
            negative_prompt=False,
            size_multiple=8,
            min_size=256,
            max_size=1024,
            default_size=(512, 512),
        ),
    ),
)


EDITING: tuple[HfModel, ...] = (
    HfModel(
        id="black-forest-labs/FLUX.1-Kontext-dev",
        name="FLUX.1 Kontext [dev] (edit)",
        description="Black Forest Labs' instruction editing model: give a picture and say what "
        'to change ("make the circle a blue star"); 28 steps, guidance 2.5, no strength. '
        "Non-commercial licence.",
        defaults=ModelDefaults(
            default_steps=28,
            steps_range=(1, 50),
            default_guidance=2.5,
            guidance_range=(1.0, 10.0),
            negative_prompt=False,
            instruction_editing=True,
            **_FLOW,
        ),
    ),
    HfModel(
        id="Qwen/Qwen-Image-Edit",
        name="Qwen-Image-Edit (edit)",
        description="Qwen's 20B instruction editing model (text in pictures too): give a "
        "picture and say what to change; 50 steps, guidance 4, no strength. Apache-2.0.",
        defaults=ModelDefaults(
            default_steps=50,
            steps_range=(1, 100),
            default_guidance=4.0,
            guidance_range=(1.0, 10.0),
            instruction_editing=True,
            **_FLOW,
        ),
    ),
)
"""Models Inference Providers serve for image-to-image that edit by instruction (the Hub's
``image-to-image`` task): an input image and the prompt's instruction, no strength."""

CATALOGUE = CATALOGUE + EDITING


def catalogue_entry(model_id: str) -> HfModel | None:
    """The catalogue's entry for ``model_id``, or None."""
    return next((model for model in CATALOGUE if model.id == model_id), None)
