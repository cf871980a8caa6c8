"""Instruction editing on the diffusers backend, offline: a tiny FLUX.1 Kontext pipeline built from
the config diffusers' own Kontext test uses (``tiny_families.EDITING_FAMILIES``). The input image
is the pipeline's ``image`` at the size asked, every step runs and is previewed from the first,
cancel and finish early act within a step, and the editing pipelines that cannot be tested here
(Qwen-Image-Edit) are refused with the reason."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
from step_counter import StepCounter
from testenv import shared_tmp
from waiting import wait_for_runs_to_end

from gradio_diffusion_preview import InvalidRequest, stream, validate_request
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.edit_capabilities import (
    INSTRUCTION_EDITING,
    NOT_RUN_EDITING,
)
from gradio_diffusion_preview.generation_info import infotext
from gradio_diffusion_preview.request import build_request
from gradio_diffusion_preview.run_handles import cancel_run, finish_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(cache_size=1)


@pytest.fixture(scope="module")
def kontext(tmp_path_factory) -> str:
    from tiny_families import build_family

    return str(build_family("flux-kontext", shared_tmp(tmp_path_factory) / "tiny-flux-kontext"))


def run(backend, **fields):
    states = list(stream(backend, min_interval=0.0, **fields))
    return states[-1], [s for s in states if s.status == "running" and s.step]


def red(size=(96, 64)) -> PIL.Image.Image:
    return PIL.Image.new("RGB", size, (200, 30, 30))


def test_the_editing_classes_are_those_of_the_installed_diffusers():
    """Every class named is an image-to-image pipeline of the installed diffusers' auto mapping,
    so a new diffusers that renames one fails here rather than at a visitor's run."""
    from diffusers.pipelines.auto_pipeline import AUTO_IMAGE2IMAGE_PIPELINES_MAPPING

    mapped = {cls.__name__ for cls in AUTO_IMAGE2IMAGE_PIPELINES_MAPPING.values()}
    assert INSTRUCTION_EDITING | set(NOT_RUN_EDITING) <= mapped


def test_kontext_says_it_edits_by_instruction(backend, kontext):
    caps = backend.capabilities_for(kontext)
    assert caps.instruction_editing and not caps.image_to_image and not caps.inpainting
    # Kontext's own steps; the size of the input; no strength filled in
    request = validate_request(
        build_request(backend, {"prompt": "make it blue", "model": kontext, "init_image": red()}),
        backend,
    )
    assert (request.steps, request.width, request.height, request.strength) == (28, 96, 64, None)


def test_kontext_edits_the_input_at_the_size_asked_previewing_every_step(backend, kontext):
    final, seen = run(backend, model=kontext, prompt="make it blue", init_image=red(), steps=4)
    assert final.status == "done", final.message
    # no strength: every step of the schedule runs, each previewed from the first
    assert final.total_steps == 4 and [s.step for s in seen][-1] == 4
    assert seen[0].step == 1 and all(s.preview is not None for s in seen)
    assert final.images[0].size == (96, 64)  # the input's size, not Kontext's million pixels
    assert final.params.strength is None
    assert "Denoising strength" not in infotext(final.params)


def test_the_input_image_is_what_kontext_edits(backend, kontext):
    """Same seed and instruction, two input pictures: two different results (the input is the
    pipeline's image, not ignored); the same picture twice: the same result."""

    def result(image):
        final, _ = run(backend, model=kontext, prompt="make it blue", init_image=image, steps=2,
                       seed=3, width=64, height=64)  # fmt: skip
        assert final.status == "done", final.message
        return np.asarray(final.images[0], np.float32)

    red_one, red_two = result(red((64, 64))), result(red((64, 64)))
    green = result(PIL.Image.new("RGB", (64, 64), (20, 220, 40)))
    assert np.array_equal(red_one, red_two)
    # random weights: the input's pull is small, but it is there
    assert not np.array_equal(red_one, green)


def test_kontext_cancels_and_finishes_early_within_a_step(backend, kontext):
    for signal in (cancel_run, finish_run):
        with StepCounter(backend) as iterations:
            states = []
            for state in stream(backend, model=kontext, prompt="make it blue", init_image=red(),
                                steps=8, min_interval=0.0):  # fmt: skip
                states.append(state)
                if (state.step or 0) >= 2 and iterations.at_signal is None:
                    assert signal(state.run_id)
                    iterations.mark()
        final = states[-1]
        assert iterations.after_signal <= 1
        if signal is cancel_run:
            assert final.status == "cancelled", final.message
        else:
            assert final.status == "done", final.message
            # the backend's own count at the signal: the state seen may be behind it (latest wins)
            assert final.params.steps_done <= iterations.at_signal + 1
            assert final.images[0].size == (96, 64)
    wait_for_runs_to_end(backend)


def test_kontext_refuses_a_strength_and_a_mask_naming_the_fix(backend, kontext):
    fields = {"prompt": "make it blue", "model": kontext, "init_image": red()}
    with pytest.raises(InvalidRequest) as caught:
        validate_request(build_request(backend, {**fields, "strength": 0.5}), backend)
    assert "edits by instruction and takes no strength" in str(caught.value)
    with pytest.raises(InvalidRequest) as caught:
        mask = PIL.Image.new("L", (96, 64), 255)
        validate_request(build_request(backend, {**fields, "mask_image": mask}), backend)
    assert "does not inpaint" in str(caught.value)


def test_kontext_without_an_input_makes_the_size_asked(backend, kontext):
    final, seen = run(backend, model=kontext, prompt="a fox", steps=2, width=96, height=64)
    assert final.status == "done", final.message
    assert final.images[0].size == (96, 64)  # max_area follows the size asked


@pytest.mark.parametrize("class_name", sorted(NOT_RUN_EDITING))
def test_an_editing_pipeline_not_run_here_is_refused_with_the_reason(backend, tmp_path, class_name):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    final, _ = run(backend, model=str(tmp_path), prompt="make it blue", steps=2)
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert f"is a {class_name}, an editing pipeline this backend does not run" in final.message
    assert NOT_RUN_EDITING[class_name] in final.message
    with pytest.raises(InvalidRequest) as caught:  # and no input image is offered to it
        fields = {"prompt": "a", "model": str(tmp_path), "init_image": red()}
        validate_request(build_request(backend, fields), backend)
    assert "does not take an input image" in str(caught.value)


def test_an_apps_own_kontext_pipeline_edits_by_instruction(kontext):
    """stream(pipe, ...) on a Kontext pipeline the app loaded: it says instruction editing and
    runs the edit as the backend does."""
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline.from_pretrained(kontext)
    final, seen = run(pipe, prompt="make it blue", init_image=red(), steps=2)
    assert final.status == "done", final.message
    assert [s.step for s in seen][-1] == 2 and final.images[0].size == (96, 64)
    refused, _ = run(pipe, prompt="make it blue", init_image=red(), strength=0.5, steps=2)
    assert refused.status == "error" and "takes no strength" in refused.message


def test_the_edit_tabs_strength_is_not_sent_to_kontext(kontext, tiny_sd15):
    """The Edit tab's hidden strength slider always has a value: the fields a run sends keep it
    for an image-to-image model and drop it for an instruction-editing one, which refuses it."""
    from gradio_diffusion_preview.model_fields import accepted_fields

    fields = {"prompt": "make it blue", "init_image": red(), "strength": 0.75}
    assert "strength" not in accepted_fields("diffusers", {**fields, "model": kontext})
    assert accepted_fields("diffusers", {**fields, "model": tiny_sd15})["strength"] == 0.75
