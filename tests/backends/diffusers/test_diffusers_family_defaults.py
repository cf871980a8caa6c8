"""Each diffusers family gets its own defaults (issue 23, point 6): the steps and guidance of its
pipeline's ``__call__``, the size its denoiser and VAE configs make, and no guidance at all where
the pipeline ignores it (Qwen-Image), so no guidance the model never used is recorded."""

from __future__ import annotations

import inspect
import json

import pytest

from gradio_diffusion_preview import GenerationRequest, InvalidRequest, validate_request
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.family_defaults import (
    CALL_DEFAULTS,
    STEPS_CHOSEN,
)


def model_folder(parent, name: str, class_name: str, **configs) -> str:
    """A model folder with ``model_index.json`` and, per keyword, ``<part>/config.json``."""
    folder = parent / name
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    for part, config in configs.items():
        (folder / part).mkdir()
        (folder / part / "config.json").write_text(json.dumps(config))
    return str(folder)


def resolve(model: str, **fields) -> GenerationRequest:
    return validate_request(
        GenerationRequest(prompt="a fox", model=model, **fields), DiffusersBackend()
    )


@pytest.mark.slow
@pytest.mark.parametrize("class_name", sorted(CALL_DEFAULTS))
def test_the_table_is_the_installed_pipelines_own_call_defaults(class_name):
    import diffusers

    parameters = inspect.signature(getattr(diffusers, class_name).__call__).parameters
    row = CALL_DEFAULTS[class_name]
    assert parameters["num_inference_steps"].default == row.steps
    assert parameters["guidance_scale"].default == row.guidance
    if row.negative_prompt:
        assert "negative_prompt" in parameters
    else:  # none at all, or only through a true_cfg_scale that is off by default
        assert "negative_prompt" not in parameters or parameters["true_cfg_scale"].default == 1.0


@pytest.mark.parametrize("class_name", sorted(CALL_DEFAULTS))
def test_every_family_runs_at_its_own_steps_and_guidance(tmp_path, class_name):
    row = CALL_DEFAULTS[class_name]
    request = resolve(model_folder(tmp_path, "model", class_name))
    assert request.steps == STEPS_CHOSEN.get(class_name, row.steps)
    assert request.guidance == row.guidance
    assert (request.width, request.height) == (row.size, row.size)


def test_qwen_image_takes_no_guidance_and_records_none(tmp_path):
    model = model_folder(
        tmp_path, "qwen", "QwenImagePipeline", transformer={"guidance_embeds": False}
    )
    request = resolve(model)
    assert request.guidance is None, "Qwen-Image ignores guidance_scale: none is recorded"
    assert request.steps == 50
    with pytest.raises(InvalidRequest, match="takes no guidance scale"):
        resolve(model, guidance=7.5)


def test_flux_without_a_guidance_embedding_takes_no_guidance(tmp_path):
    schnell_like = model_folder(
        tmp_path, "my-flux", "FluxPipeline", transformer={"guidance_embeds": False}
    )
    dev_like = model_folder(
        tmp_path, "other", "FluxPipeline", transformer={"guidance_embeds": True}
    )
    assert resolve(schnell_like).guidance is None
    assert resolve(dev_like).guidance == 3.5


def test_a_step_distilled_flux2_klein_takes_no_guidance(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    distilled = tmp_path / "distilled"
    distilled.mkdir()
    for folder, flag in ((base, False), (distilled, True)):
        index = {"_class_name": "Flux2KleinPipeline", "is_distilled": flag}
        (folder / "model_index.json").write_text(json.dumps(index))
    assert resolve(str(base)).guidance == 4.0
    assert resolve(str(distilled)).guidance is None
    with pytest.raises(InvalidRequest, match="takes no guidance scale"):
        resolve(str(distilled), guidance=4.0)


def test_the_size_is_the_denoisers_sample_size_times_the_vaes_scale(tmp_path):
    four_blocks = {"block_out_channels": [128, 256, 512, 512]}
    lumina2 = model_folder(
        tmp_path, "l2", "Lumina2Pipeline", transformer={"sample_size": 96}, vae=four_blocks
    )
    sana = model_folder(  # AutoencoderDC: 32x
        tmp_path,
        "sana",
        "SanaPipeline",
        transformer={"sample_size": 16},
        vae={"encoder_block_out_channels": [128, 256, 512, 512, 1024, 1024]},
    )
    qwen = model_folder(  # the Qwen-Image VAE: 2 ** len(temperal_downsample)
        tmp_path,
        "qwen",
        "QwenImagePipeline",
        transformer={"sample_size": 80},
        vae={"temperal_downsample": [False, True, True]},
    )
    tiny = model_folder(  # 32 px: below the backend's smallest size, so the class's size
        tmp_path,
        "tiny",
        "AuraFlowPipeline",
        transformer={"sample_size": 32},
        vae={"block_out_channels": [4]},
    )
    assert resolve(lumina2).width == 768
    assert resolve(sana).width == 512
    assert resolve(qwen).width == 640
    assert resolve(tiny).width == 1024
