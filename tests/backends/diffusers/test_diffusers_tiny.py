"""The tiny random-weight pipelines the demo, tests and benchmarks use."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gradio_diffusion_preview.backends.diffusers.tiny import (
    build_tiny_pipeline,
    default_tiny_model_dir,
    is_built,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "pipeline_class"),
    [
        ("sd15", "StableDiffusionPipeline"),
        ("sdxl", "StableDiffusionXLPipeline"),
    ],
)
def test_tiny_pipelines_load_back_like_any_saved_model(tiny_models, kind, pipeline_class):
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_models[kind])
    assert type(pipe).__name__ == pipeline_class
    assert pipe.vae_scale_factor == 8 and pipe.vae.config.latent_channels == 4
    assert pipe.tokenizer.model_max_length == 77
    assert len(pipe.tokenizer("a cat").input_ids) > 2
    if kind == "sdxl":
        assert type(pipe.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
        assert pipe.unet.config.addition_embed_type == "text_time"
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        "a cat",
        num_inference_steps=10,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.size == (64, 64)


def test_building_again_reuses_the_folder(tmp_path):
    folder = build_tiny_pipeline("sd15", tmp_path / "tiny")
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert build_tiny_pipeline("sd15", tmp_path / "tiny") == folder
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no staging folder left


def test_a_build_of_an_older_version_is_replaced(tmp_path):
    folder = build_tiny_pipeline("sd15", tmp_path / "tiny")
    (folder / "tiny_build.json").write_text('{"kind": "sd15", "version": "0"}')
    assert not is_built(folder)
    build_tiny_pipeline("sd15", folder)
    assert is_built(folder) and (folder / "unet").is_dir()


def test_a_folder_holding_something_else_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a tiny pipeline"):
        build_tiny_pipeline("sd15", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_concurrent_builds_of_one_folder_both_succeed(tmp_path):
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_tiny_pipeline("sd15", tmp_path / "tiny"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(results) == 2 and is_built(tmp_path / "tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_default_folder_follows_the_cache_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFUSION_PREVIEW_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_tiny_model_dir("sdxl") == tmp_path / "gradio-diffusion-preview" / "tiny-sdxl"
    monkeypatch.setenv("DIFFUSION_PREVIEW_CACHE", str(tmp_path / "mine"))
    assert default_tiny_model_dir("sd15") == tmp_path / "mine" / "tiny-sd15"


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sd15, sdxl"):
        build_tiny_pipeline("sd9", tmp_path)
