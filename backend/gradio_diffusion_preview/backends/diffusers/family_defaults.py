"""Each text-to-image pipeline class's own defaults, and its native size read from a model's config.

``CALL_DEFAULTS`` holds, per diffusers pipeline class, the defaults of its ``__call__``
(``num_inference_steps``, ``guidance_scale``) in diffusers 0.42.1, written out so the backend
can judge a model before a run without importing diffusers (seconds of torch import on every
validation). A test compares every entry with the installed diffusers' signatures, so the table
cannot drift silently (tests/backends/diffusers/test_diffusers_family_defaults.py).

"Takes no guidance" (``guidance=None`` here): Qwen-Image's ``guidance_scale`` only feeds a
guidance-distilled transformer (``guidance_embeds``); the released checkpoints are not, and the
pipeline logs that the value is ignored. Its classifier-free guidance is ``true_cfg_scale``,
applied only with a negative prompt. So the run records no guidance for it, rather than a value
the model never used. Flux with ``guidance_embeds`` false (FLUX.1-schnell) ignores it too, and so
does a step-distilled FLUX.2 [klein] (``is_distilled`` in its ``model_index.json``: the pipeline
warns that guidance is ignored and runs without CFG).

The native size is the pipeline's own default: the denoiser's ``sample_size`` times the VAE's
scale factor, as the pipelines compute ``height = height or sample_size * vae_scale_factor``;
read from the model's ``transformer``/``unet`` and ``vae``/``movq`` configs when they say it,
else the class's size below (the size of its released checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CallDefaults:
    """One pipeline class's defaults: steps and guidance from its ``__call__`` signature
    (``guidance`` None: it takes none), its released checkpoints' size, and size multiple."""

    steps: int
    guidance: float | None
    size: int = 1024
    negative_prompt: bool = True
    size_multiple: int | None = None


CALL_DEFAULTS: dict[str, CallDefaults] = {
    "StableDiffusionXLPipeline": CallDefaults(50, 5.0),
    "StableDiffusion3Pipeline": CallDefaults(28, 7.0, size_multiple=16),
    # true_cfg_scale 1.0 by default: a negative prompt is ignored unless it is raised
    "FluxPipeline": CallDefaults(28, 3.5, negative_prompt=False, size_multiple=16),
    # FLUX.1 Kontext (instruction editing): Flux's defaults; an edit's size is its input's
    "FluxKontextPipeline": CallDefaults(28, 3.5, negative_prompt=False, size_multiple=16),
    "ChromaPipeline": CallDefaults(35, 5.0, size_multiple=16),
    "Lumina2Pipeline": CallDefaults(30, 4.0),
    "LuminaPipeline": CallDefaults(30, 4.0),
    "QwenImagePipeline": CallDefaults(50, None, size_multiple=16),
    "ZImagePipeline": CallDefaults(50, 5.0, size_multiple=16),
    "AuraFlowPipeline": CallDefaults(50, 3.5),
    "SanaPipeline": CallDefaults(20, 4.5, size_multiple=32),
    "LatentConsistencyModelPipeline": CallDefaults(4, 8.5, size=512, negative_prompt=False),
    "CogView4Pipeline": CallDefaults(50, 5.0, size_multiple=16),
    "CogView3PlusPipeline": CallDefaults(50, 5.0, size_multiple=16),
    "HunyuanDiTPipeline": CallDefaults(50, 5.0, size_multiple=16),
    "Kandinsky3Pipeline": CallDefaults(25, 3.0),
    "StableDiffusionXLPAGPipeline": CallDefaults(50, 5.0),
    "SanaPAGPipeline": CallDefaults(20, 4.5, size_multiple=32),
    "KandinskyV22CombinedPipeline": CallDefaults(100, 4.0, size=512),
    "Krea2Pipeline": CallDefaults(28, 4.5, size_multiple=16),
    "OvisImagePipeline": CallDefaults(50, 5.0, size_multiple=16),
    "PixArtAlphaPipeline": CallDefaults(20, 4.5),
    "PixArtSigmaPipeline": CallDefaults(20, 4.5),
    "PixArtSigmaPAGPipeline": CallDefaults(20, 4.5),
    "Flux2Pipeline": CallDefaults(50, 4.0, negative_prompt=False, size_multiple=16),
    "Flux2KleinPipeline": CallDefaults(50, 4.0, negative_prompt=False, size_multiple=16),
}

# Where the project's default differs from the signature's, and why.
STEPS_CHOSEN: dict[str, int] = {
    "StableDiffusionXLPipeline": 30,  # SDXL base converges by about 30; 50 is the generic default
    "StableDiffusionXLPAGPipeline": 30,  # the same SDXL models, with PAG
}

_DENOISERS = ("transformer", "unet", "prior")
_VAES = ("vae", "movq")


def vae_scale_factor(vae: dict[str, Any]) -> int | None:
    """How many pixels one latent cell covers, from a VAE config, as the pipelines compute it:
    2 ** (blocks - 1) for AutoencoderKL/VQModel/AutoencoderDC, 2 ** len(temporal downsampling)
    for the Qwen-Image/Wan VAE; None for a VAE this does not know."""
    for key in ("block_out_channels", "encoder_block_out_channels"):
        blocks = vae.get(key)
        if isinstance(blocks, list) and blocks:
            return 2 ** (len(blocks) - 1)
    temporal = vae.get("temperal_downsample")
    if isinstance(temporal, list):
        return 2 ** len(temporal)
    return None


def native_size(read: Callable[[str], dict[str, Any] | None]) -> int | None:
    """The size the pipeline makes when none is asked (sample_size x VAE scale factor), from
    ``read(relative path)`` giving a model's JSON configs; None when they do not say it."""
    sample = next(
        (
            config.get("sample_size")
            for name in _DENOISERS
            if (config := read(f"{name}/config.json")) is not None
        ),
        None,
    )
    scale = next(
        (
            vae_scale_factor(config)
            for name in _VAES
            if (config := read(f"{name}/config.json")) is not None
        ),
        None,
    )
    if isinstance(sample, list) and sample:
        sample = sample[0]
    if not isinstance(sample, int) or not scale:
        return None
    return sample * scale


def guidance_distilled(read: Callable[[str], dict[str, Any] | None]) -> bool | None:
    """The transformer config's ``guidance_embeds`` (Flux, Qwen-Image), None when not said."""
    config = read("transformer/config.json")
    value = config.get("guidance_embeds") if config else None
    return value if isinstance(value, bool) else None


def step_distilled(read: Callable[[str], dict[str, Any] | None]) -> bool:
    """The pipeline config's ``is_distilled`` (FLUX.2 [klein]): True when it says so."""
    return (read("model_index.json") or {}).get("is_distilled") is True
