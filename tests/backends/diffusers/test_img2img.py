"""Image-to-image and inpainting on the diffusers backend, offline: the bundled shapes model (a red
circle turned into a blue heart), tiny SD 1.x and Flux pipelines built from diffusers' own test
configs. The run does the last int(steps * strength) steps, previews every one (the first close
to the input at a low strength, not noise), cancels and finishes early within a step, and makes
the image at the input's size."""

from __future__ import annotations

import base64
import io
import json
import os
import random

import numpy as np
import PIL.Image
import pytest
from step_counter import StepCounter
from waiting import wait_for_runs_to_end

from gradio_diffusion_preview import InvalidRequest, stream, validate_request
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.edit_capabilities import (
    IMAGE_TO_IMAGE,
    INPAINTING,
)
from gradio_diffusion_preview.bundled.shapes import model_dir
from gradio_diffusion_preview.bundled.shapes.draw import draw_scene
from gradio_diffusion_preview.bundled.shapes.grammar import make_scene
from gradio_diffusion_preview.bundled.shapes.judge import judge
from gradio_diffusion_preview.generation_info import infotext
from gradio_diffusion_preview.request import build_request
from gradio_diffusion_preview.run_handles import cancel_run, finish_run

pytestmark = pytest.mark.slow
SHAPES = str(model_dir())


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(cache_size=2)


@pytest.fixture(scope="module")
def red_circle() -> PIL.Image.Image:
    return draw_scene(make_scene(random.Random(0), ("circle", "red", "white")))


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory) -> str:
    from tiny_families import build_family

    base = tmp_path_factory.getbasetemp()
    base = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return str(build_family("flux", base / "tiny-family-flux"))


def picture(data) -> PIL.Image.Image:
    """A state's preview (a data URL) or image as a PIL image."""
    if isinstance(data, PIL.Image.Image):
        return data
    return PIL.Image.open(io.BytesIO(base64.b64decode(str(data).split(",", 1)[1])))


def distance(a: PIL.Image.Image, b: PIL.Image.Image) -> float:
    """Mean absolute difference per channel (0-255), at ``a``'s size."""
    a, b = a.convert("RGB"), b.convert("RGB").resize(a.size, PIL.Image.Resampling.BILINEAR)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def run(backend, **fields):
    states = list(stream(backend, min_interval=0.0, **fields))
    steps = [s for s in states if s.status == "running" and s.step]
    return states[-1], steps


def expect_steps(final, seen, count: int) -> None:
    """The run counted ``count`` steps and reached the last: the steps seen rise to it (the
    stream coalesces steps when its reader falls behind, latest wins, so some may be skipped)."""
    numbers = [state.step for state in seen]
    assert final.total_steps == count, final.total_steps
    assert numbers == sorted(set(numbers)) and numbers[-1] == count, numbers
    assert set(numbers) <= set(range(1, count + 1)), numbers


def test_the_classes_taken_are_those_the_installed_diffusers_maps():
    from diffusers.pipelines.auto_pipeline import (
        AUTO_IMAGE2IMAGE_PIPELINES_MAPPING,
        AUTO_INPAINT_PIPELINES_MAPPING,
        AUTO_TEXT2IMAGE_PIPELINES_MAPPING,
    )

    by_class = {cls.__name__: key for key, cls in AUTO_TEXT2IMAGE_PIPELINES_MAPPING.items()}
    for table, mapping in (
        (IMAGE_TO_IMAGE, AUTO_IMAGE2IMAGE_PIPELINES_MAPPING),
        (INPAINTING, AUTO_INPAINT_PIPELINES_MAPPING),
    ):
        for text_class, edit_class in table.items():
            assert mapping[by_class[text_class]].__name__ == edit_class


def test_the_bundled_model_turns_a_red_circle_into_a_blue_heart(backend, red_circle):
    """The demo's Edit example (its EDIT_PROMPT), at two seeds."""
    for seed in (0, 1):
        final, steps = run(
            backend,
            model=SHAPES,
            prompt="a blue heart on a white background",
            init_image=red_circle,
            strength=0.6,
            steps=10,
            seed=seed,
        )
        assert final.status == "done", final.message
        expect_steps(final, steps, 6)  # int(10 * 0.6)
        assert final.images[0].size == red_circle.size
        seen = judge(final.images[0])
        assert (seen.background, seen.colour, seen.shape) == ("white", "blue", "heart"), seen
        assert final.params.strength == 0.6
        assert "Denoising strength: 0.6" in infotext(final.params)  # PNG info, as A1111's


def test_the_first_preview_shows_the_input_at_a_low_strength(backend, red_circle):
    green_square = draw_scene(make_scene(random.Random(0), ("square", "green", "yellow")))

    def first_preview(image, prompt, strength):
        _, steps = run(backend, model=SHAPES, prompt=prompt, init_image=image,
                       strength=strength, steps=10, seed=1)  # fmt: skip
        return picture(steps[0].preview)

    for image, other in ((red_circle, green_square), (green_square, red_circle)):
        preview = first_preview(image, "a picture", 0.2)  # a prompt that pulls nowhere
        # the latent-RGB projection of the input itself is about 9 away from it
        assert distance(preview, image) < 16, distance(preview, image)
        assert distance(preview, other) > 50, distance(preview, other)
        preview = first_preview(image, "a blue star on a white background", 0.1)
        assert distance(preview, image) < distance(preview, other) - 20


@pytest.mark.parametrize("steps, strength", [(10, 0.5), (8, 0.75), (7, 0.3), (4, 1.0)])
def test_an_edit_does_int_steps_times_strength_steps(backend, tiny_sd15, steps, strength):
    image = PIL.Image.new("RGB", (96, 64), (30, 120, 200))
    final, seen = run(
        backend, model=tiny_sd15, prompt="a fox", init_image=image, strength=strength, steps=steps
    )
    assert final.status == "done", final.message
    expect_steps(final, seen, int(steps * strength))
    assert all(s.preview is not None for s in seen)
    assert final.images[0].size == (96, 64)  # the input's size
    assert final.params.width == 96 and final.params.height == 64


def test_inpainting_runs_the_inpaint_pipeline_with_the_mask(backend, tiny_sd15):
    image = PIL.Image.new("RGB", (64, 64), (30, 120, 200))
    mask = PIL.Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    states = []
    for state in stream(backend, model=tiny_sd15, prompt="a fox", init_image=image,
                        mask_image=mask, strength=0.5, steps=6, min_interval=0.0):  # fmt: skip
        states.append(state)
    final = states[-1]
    assert final.status == "done", final.message
    expect_steps(final, [s for s in states if s.status == "running" and s.step], 3)
    assert final.images[0].size == (64, 64)


def test_a_strength_too_low_for_one_step_is_refused_with_the_fix(backend, tiny_sd15):
    image = PIL.Image.new("RGB", (64, 64))
    final, _ = run(backend, model=tiny_sd15, prompt="a", init_image=image, strength=0.1, steps=5)
    assert final.status == "error" and final.reason == "invalid_request"
    assert "no denoising step runs" in final.message and "raise the strength" in final.message


def test_an_edit_cancels_and_finishes_early_within_a_step(backend, tiny_sd15):
    image = PIL.Image.new("RGB", (64, 64), (200, 40, 40))
    for signal in (cancel_run, finish_run):
        with StepCounter(backend) as iterations:
            states = []
            for state in stream(backend, model=tiny_sd15, prompt="a fox", init_image=image,
                                strength=0.8, steps=10, min_interval=0.0):  # fmt: skip
                states.append(state)
                # step 2, or the first after it where a busy machine let the newer state win
                if (state.step or 0) >= 2 and iterations.at_signal is None:
                    assert signal(state.run_id)
                    iterations.mark()
        final = states[-1]
        assert iterations.after_signal <= 1
        if signal is cancel_run:
            assert final.status == "cancelled", final.message
            wait_for_runs_to_end(backend)
        else:
            assert final.status == "done", final.message
            # the backend's own count at the signal: the state seen may be behind it (latest wins)
            assert final.params.steps_done <= iterations.at_signal + 1
            assert final.images[0].size == (64, 64)


def test_flux_img2img_runs_the_steps_its_pipeline_takes(backend, tiny_flux):
    image = PIL.Image.new("RGB", (96, 64), (30, 200, 30))
    final, seen = run(backend, model=tiny_flux, prompt="a fox", init_image=image, strength=0.5,
                      steps=4, guidance=None)  # fmt: skip
    assert final.status == "done", final.message
    expect_steps(final, seen, 2)  # Flux: 4 - int(4 - 4 * 0.5)
    assert all(s.preview is not None for s in seen)
    assert final.images[0].size == (96, 64)
    assert final.params.strength == 0.5


def test_a_model_whose_class_has_no_img2img_refuses_an_input_image(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "SanaPipeline"}))
    backend = DiffusersBackend()
    fields = {"prompt": "a", "model": str(tmp_path), "init_image": PIL.Image.new("RGB", (64, 64))}
    with pytest.raises(InvalidRequest) as caught:
        validate_request(build_request(backend, fields), backend)
    assert f"model '{tmp_path}' does not take an input image" in str(caught.value)


def test_the_kit_checks_img2img_on_the_bundled_model(backend):
    from gradio_diffusion_preview.testing import check_image_to_image, check_image_to_image_preview

    fields = dict(model=SHAPES, prompt="a red circle on a white background", steps=5, seed=2)
    assert check_image_to_image(backend, **fields) is None
    assert check_image_to_image_preview(backend, **fields) is None


def test_the_kit_sees_a_backend_that_ignores_the_input(backend, tiny_sd15):
    """The preview check fails on a model that keeps nothing of the input (random weights),
    naming the fix; the size check passes there (the backend respects the size)."""
    from gradio_diffusion_preview.testing import (
        ConformanceError,
        check_image_to_image,
        check_image_to_image_preview,
    )

    fields = dict(model=tiny_sd15, prompt="a fox", steps=5, seed=2, width=64, height=64)
    assert check_image_to_image(backend, **fields) is None
    with pytest.raises(ConformanceError) as caught:
        check_image_to_image_preview(backend, **fields)
    assert "fix: start the run from the input image noised" in str(caught.value)


def test_an_apps_own_pipeline_takes_an_input_image(tiny_sd15):
    """stream(pipe, ...) on a pipeline the app loaded: its img2img pipeline is built from the
    same components (no second load), and the app's pipeline is left as it was."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15, safety_checker=None)
    image = PIL.Image.new("RGB", (80, 64), (200, 40, 40))
    final, seen = run(pipe, prompt="a fox", init_image=image, strength=0.5, steps=4)
    assert final.status == "done", final.message
    expect_steps(final, seen, 2)
    assert final.images[0].size == (80, 64)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    text, _ = run(pipe, prompt="a fox", steps=2, width=64, height=64)  # text-to-image still
    assert text.status == "done" and text.images[0].size == (64, 64)


@pytest.mark.parametrize("masked", [False, True], ids=["img2img", "inpainting"])
def test_sdxl_and_flux_edit_and_inpaint(backend, tiny_models, tiny_flux, masked):
    image = PIL.Image.new("RGB", (96, 64), (30, 200, 30))
    mask = PIL.Image.new("L", (96, 64), 0)
    mask.paste(255, (32, 16, 64, 48))
    for model in (tiny_models["sdxl"], tiny_flux):
        extra = {"mask_image": mask} if masked else {}
        final, seen = run(backend, model=model, prompt="a fox", init_image=image, strength=0.5,
                          steps=4, **extra)  # fmt: skip
        assert final.status == "done", final.message
        expect_steps(final, seen, 2)
        assert all(s.preview is not None for s in seen)
        assert final.images[0].size == (96, 64)
