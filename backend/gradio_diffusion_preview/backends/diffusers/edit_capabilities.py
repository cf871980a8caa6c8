"""Which diffusers models take an input image: image-to-image, inpainting and instruction editing,
by pipeline class.

A text-to-image pipeline's img2img and inpainting pipelines are built from its loaded components
(``AutoPipelineFor*.from_pipe``, see ``img2img``), so what a model takes follows from the
class its ``model_index.json`` names. The classes below are those whose img2img and inpainting
pipelines run here with step previews (their loops take a step callback and the same latents as
text-to-image); ``tests/backends/diffusers/test_img2img.py`` checks each pair against the
installed diffusers' own mapping. Read without importing torch or diffusers: validation asks
before every run.
"""

from __future__ import annotations

from typing import Any

IMAGE_TO_IMAGE: dict[str, str] = {
    "StableDiffusionPipeline": "StableDiffusionImg2ImgPipeline",
    "StableDiffusionPAGPipeline": "StableDiffusionPAGImg2ImgPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLPAGPipeline": "StableDiffusionXLPAGImg2ImgPipeline",
    "StableDiffusion3Pipeline": "StableDiffusion3Img2ImgPipeline",
    "StableDiffusion3PAGPipeline": "StableDiffusion3PAGImg2ImgPipeline",
    "FluxPipeline": "FluxImg2ImgPipeline",
    "QwenImagePipeline": "QwenImageImg2ImgPipeline",
    "ZImagePipeline": "ZImageImg2ImgPipeline",
}
"""Text-to-image class -> the img2img class built from it."""
INPAINTING: dict[str, str] = {
    "StableDiffusionPipeline": "StableDiffusionInpaintPipeline",
    "StableDiffusionPAGPipeline": "StableDiffusionPAGInpaintPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLInpaintPipeline",
    "StableDiffusionXLPAGPipeline": "StableDiffusionXLPAGInpaintPipeline",
    "StableDiffusion3Pipeline": "StableDiffusion3InpaintPipeline",
    "FluxPipeline": "FluxInpaintPipeline",
    "QwenImagePipeline": "QwenImageInpaintPipeline",
    "ZImagePipeline": "ZImageInpaintPipeline",
}
"""Text-to-image class -> the inpainting class built from it."""
INSTRUCTION_EDITING: frozenset[str] = frozenset({"FluxKontextPipeline"})
"""Editing pipelines run as they are loaded: the input image is their ``image`` and the prompt
the instruction; they take no strength (every step runs) and no mask. FLUX.1 Kontext is run and
tested here (a tiny pipeline from diffusers' own Kontext test config)."""
NOT_RUN_EDITING: dict[str, str] = {
    "QwenImageEditPipeline": (
        "its Qwen2-VL processor (a component of the pipeline) and tokenizer are downloaded by "
        "diffusers' own test (hf-internal-testing/tiny-random-Qwen2VLForConditionalGeneration), "
        "so no tiny pipeline can be built offline to test it, and it encodes the input image "
        "at about 1024x1024 whatever size is asked (about a million pixels through the VAE and "
        "the vision encoder per run)"
    ),
    "QwenImageEditPlusPipeline": (
        "like Qwen-Image-Edit: its Qwen2-VL processor and tokenizer are downloaded by diffusers' "
        "own test, so no tiny pipeline can be built offline to test it, and it encodes every "
        "input image at about 1024x1024 (and again at 384x384 for the vision encoder)"
    ),
}
"""Editing pipelines of the installed diffusers this backend refuses, with the reason: a run
that cannot be tested here is not offered."""


def edit_flags(class_name: str | None) -> dict[str, Any]:
    """The ``Capabilities`` fields for a model of pipeline class ``class_name``; empty (the
    backend's: image-to-image, inpainting and instruction editing allowed, checked when the run
    loads the model) when the class cannot be read (a repo not in the cache yet)."""
    if class_name is None:
        return {}
    return {
        "image_to_image": class_name in IMAGE_TO_IMAGE,
        "inpainting": class_name in INPAINTING,
        "instruction_editing": class_name in INSTRUCTION_EDITING,
    }


def edits_by_instruction(pipe: Any) -> bool:
    """Whether a loaded pipeline is one of the instruction-editing pipelines run here."""
    return type(pipe).__name__ in INSTRUCTION_EDITING


def model_edit_flags(model: str | None) -> dict[str, Any]:
    """``edit_flags`` for a model (a folder or a cached repo id), from its model_index.json."""
    if not model:
        return {}
    from .model_defaults import _class_name, _local_folder

    return edit_flags(_class_name(model, _local_folder(model)))
