"""Image-to-image and instruction editing through ``InferenceClient.image_to_image``.

huggingface_hub 2.4 calls five providers for the ``image-to-image`` task
(``inference/_providers/__init__.py``), each reshaping the same arguments its own way:

- ``hf-inference`` (``HFInferenceBinaryInputTask``): ``{"inputs": <base64>, "parameters":
  {...}}``; the answer is the image's bytes. It takes raw bytes, a path or a URL, never a PIL
  image. Its diffusers servers take ``strength`` and ``target_size`` ({width, height}).
- ``fal-ai`` (``FalAIImageToImageTask``, fal's *queue*): ``image_url`` and ``image_urls`` as a
  data URL, ``target_size`` renamed ``image_size``; the request id is polled, then the image
  fetched. fal's img2img endpoints take ``strength`` (fal-ai/flux/dev/image-to-image: 0.01 to
  1, default 0.95); its editing endpoints (Kontext, Qwen-Image-Edit) take none.
- ``replicate``: the data URL under ``image``, ``images``, ``input_image`` and
  ``input_images`` (models differ); img2img models name the strength ``prompt_strength``.
- ``together``: ``image_url`` for FLUX.1 Kontext, ``reference_images`` otherwise; no strength.
- ``wavespeed``: ``image`` as a data URL it labels JPEG; a ``str`` input would be opened as a
  path, so bytes are sent. No strength is sent (its editing models take none).

The input goes as PNG bytes carrying their MIME type (huggingface_hub's ``MimeBytes``, a
``bytes``), which every helper takes and the data-URL ones label ``image/png``. The strength is
sent, under the provider's name for it, only for a model whose capabilities say
``image_to_image``; an instruction-editing model gets none (validation refuses one).
"""

from __future__ import annotations

import io
from typing import Any

TASK = "image-to-image"
STRENGTH_NAMES = {"hf-inference": "strength", "fal-ai": "strength", "replicate": "prompt_strength"}
"""The name each provider's img2img models give the strength; the others take none."""
SIZE_PROVIDERS = frozenset({"hf-inference", "fal-ai"})
"""Providers whose helper sends ``target_size`` as a size the service reads (hf-inference's
``parameters.target_size``, fal's ``image_size``); the others make the input's size."""


def input_bytes(image: Any) -> bytes:
    """The request's input image as PNG bytes that say they are PNG (for the data URLs)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    try:
        from huggingface_hub.inference._common import MimeBytes
    except ImportError:  # a later huggingface_hub: plain bytes, labelled by its default
        return data
    return MimeBytes(data, mime_type="image/png")


def edit_arguments(request: Any) -> dict[str, Any]:
    """The provider-free arguments of an edit: ``image_to_image``'s, with the size as ``width``
    and ``height`` and the strength as ``strength`` (``for_provider`` renames or drops them)."""
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "width": request.width,
        "height": request.height,
        "strength": request.strength,
    }


def for_provider(arguments: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """``arguments`` (from ``edit_arguments``) as ``image_to_image`` takes them for
    ``provider`` (None: an endpoint URL, which speaks the hf-inference protocol)."""
    provider = provider or "hf-inference"
    sent = dict(arguments)
    width, height = sent.pop("width", None), sent.pop("height", None)
    strength = sent.pop("strength", None)
    if provider in SIZE_PROVIDERS and width and height:
        sent["target_size"] = {"width": width, "height": height}
    name = STRENGTH_NAMES.get(provider)
    if name and strength is not None:
        sent[name] = strength
    return sent
