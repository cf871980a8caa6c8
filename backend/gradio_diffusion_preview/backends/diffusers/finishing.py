"""Finishing early on pipelines whose denoising loop ignores ``_interrupt``.

Most diffusers pipelines check ``self.interrupt`` at the top of each iteration, so the step
callback can set ``_interrupt``, hand back the x0 estimate as the latents and let the pipeline
decode them. Some do not (diffusers 0.42.1: Lumina, Lumina2, AuraFlow, Kandinsky 3, LCM,
PRX...): they would run to their last step while the callback kept replacing the latents. On
those the callback raises instead, leaving the loop at once, and the run decodes the estimate
here exactly as the pipeline's own end does: ``latents / scaling_factor`` (``+ shift_factor``
where the pipeline adds it), the VAE's decode, and the pipeline's image post-processing; for
Kandinsky 3, its movq's decode of the unscaled latents and its own conversion to images.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch


@functools.lru_cache(maxsize=64)
def _source_of_call(pipeline_class: type) -> str:
    try:
        return inspect.getsource(pipeline_class.__call__)
    except (OSError, TypeError):
        return ""


def honours_interrupt(pipe: Any, legacy_callback: bool = False) -> bool:
    """True when the pipeline's loop checks ``self.interrupt`` (or when it cannot be decoded
    here, so the pipeline's own end is the only way to get an image). With
    ``legacy_callback`` (the older ``callback``, whose return the loop ignores, so the x0
    estimate cannot be handed back) only a pipeline that cannot be decoded here counts."""
    source = _source_of_call(type(pipe))
    if ("self.interrupt" in source or not source) and not legacy_callback:
        return True
    return not decodable(pipe)


def decodable(pipe: Any) -> bool:
    """Whether ``decode_latents`` can turn this pipeline's latents into its final images."""
    if _movq(pipe) is not None:
        return True
    vae = getattr(pipe, "vae", None)
    return (
        vae is not None
        and hasattr(vae, "decode")
        and getattr(pipe, "image_processor", None) is not None
        and getattr(vae.config, "scaling_factor", None) is not None
    )


def decode_latents(pipe: Any, latents: torch.Tensor) -> list:
    """The final PIL images from ``latents`` (the denoiser's space), as the pipeline's end
    makes them."""
    movq = _movq(pipe)
    if movq is not None:
        return _decode_movq(pipe, movq, latents)
    vae = pipe.vae
    config = vae.config
    latents = latents.to(vae.dtype) / config.scaling_factor
    shift = getattr(config, "shift_factor", None)
    if shift is not None and "shift_factor" in _source_of_call(type(pipe)):
        latents = latents + shift
    with torch.inference_mode():
        image = vae.decode(latents, return_dict=False)[0]
    return pipe.image_processor.postprocess(image, output_type="pil")


def _movq(pipe: Any) -> Any:
    """Kandinsky 3's VQ decoder ("movq"), where the pipeline has one instead of a VAE."""
    movq = getattr(pipe, "movq", None)
    if getattr(pipe, "vae", None) is None and movq is not None and hasattr(movq, "decode"):
        return movq
    return None


def _decode_movq(pipe: Any, movq: Any, latents: torch.Tensor) -> list:
    """As Kandinsky3Pipeline's end: the movq decodes the latents unscaled and unquantised,
    then [-1, 1] becomes [0, 1] and PIL images."""
    with torch.inference_mode():
        image = movq.decode(latents.to(movq.dtype), force_not_quantize=True)["sample"]
    image = (image * 0.5 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
    return pipe.numpy_to_pil(image)
