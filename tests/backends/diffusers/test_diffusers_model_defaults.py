"""The diffusers backend gives each model the defaults and limits it calls for: distilled models
few steps and no guidance, each family its native size, a folder's own file above all."""

from __future__ import annotations

import json

import pytest

from gradio_diffusion_preview import GenerationRequest, InvalidRequest, validate_request
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.model_defaults import defaults_for


def pipeline_folder(parent, name: str, class_name: str = "StableDiffusionPipeline"):
    folder = parent / name
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    return folder


def resolve(model, **fields):
    return validate_request(
        GenerationRequest(prompt="a fox", model=str(model), **fields), DiffusersBackend()
    )


def test_a_turbo_model_defaults_to_one_step_without_guidance(tmp_path):
    turbo = pipeline_folder(tmp_path, "sdxl-turbo", "StableDiffusionXLPipeline")
    request = resolve(turbo)
    assert (request.steps, request.guidance, request.width, request.height) == (1, 0.0, 1024, 1024)
    with pytest.raises(InvalidRequest, match=r"steps must be from 1 to 4 for model"):
        resolve(turbo, steps=20)


def test_each_family_gets_its_native_size_and_settings(tmp_path):
    sd15 = resolve(pipeline_folder(tmp_path, "my-sd15"))
    sdxl = resolve(pipeline_folder(tmp_path, "my-xl", "StableDiffusionXLPipeline"))
    flux = resolve(pipeline_folder(tmp_path, "flux.1-schnell", "FluxPipeline"))
    assert (sd15.width, sd15.steps, sd15.guidance) == (512, 20, 7.5)
    assert (sdxl.width, sdxl.steps) == (1024, 30)
    assert (flux.width, flux.steps, flux.guidance) == (1024, 4, 0.0)
    with pytest.raises(InvalidRequest, match="takes no negative prompt"):
        resolve(tmp_path / "flux.1-schnell", negative_prompt="blurry")


def test_a_folders_own_defaults_win(tmp_path):
    folder = pipeline_folder(tmp_path, "sdxl-turbo", "StableDiffusionXLPipeline")
    own = {"defaults": {"default_steps": 12, "default_size": [64, 64], "min_size": 32}}
    (folder / "diffusion_preview.json").write_text(json.dumps(own))
    request = resolve(folder)
    assert (request.steps, request.width, request.height, request.guidance) == (12, 64, 64, 7.5)


def test_a_plain_model_has_no_defaults_of_its_own(tmp_path):
    assert defaults_for(str(pipeline_folder(tmp_path, "plain"))) is None
    assert DiffusersBackend().model_info(str(tmp_path / "plain")) is None
