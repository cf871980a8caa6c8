"""A seed reproduces its image on every sampler the diffusers backend offers: two runs with one
seed give identical pixels, and the same pixels as plain diffusers given the same settings and
generator. Stochastic samplers ("euler_a") draw their per-step noise from the run's generator,
not from torch's global random state (which the x0 tracker's wrapped ``step`` once hid from the
pipeline by not declaring ``generator``). The one sampler diffusers itself cannot run on this
model is refused before the run, with the sampler to use instead."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from gradio_diffusion_preview import Failed, Finished, InvalidRequest, RunControl, validate_request
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.schedulers import (
    SCHEDULERS,
    SchedulerChoiceError,
    make_scheduler,
)
from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker
from gradio_diffusion_preview.bundled.shapes import MODEL_SIZE, model_dir
from gradio_diffusion_preview.request import GenerationRequest

PROMPT = "a red circle on a blue background"
SEED = 5
STEPS = 4
GUIDANCE = 7.5
# Samplers diffusers 0.42 cannot run with the bundled model's cosine noise schedule
# (huggingface/diffusers#12771): the backend refuses them before the run.
BROKEN_IN_DIFFUSERS = {"DPM++ 2M Karras"}


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(device="cpu")


@pytest.fixture(scope="module")
def plain_pipeline():
    """The bundled model loaded by diffusers alone, as a person would without this package."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(model_dir()), dtype=torch.float32, local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def backend_run(backend: DiffusersBackend, sampler: str) -> Finished | Failed:
    request = GenerationRequest(
        prompt=PROMPT,
        model=str(model_dir()),
        steps=STEPS,
        guidance=GUIDANCE,
        seed=SEED,
        width=MODEL_SIZE,
        height=MODEL_SIZE,
        options={"scheduler": sampler, "previewer": "latent_rgb"},
    )
    return list(backend.generate(validate_request(request, backend), RunControl()))[-1]


def backend_pixels(backend: DiffusersBackend, sampler: str) -> np.ndarray:
    final = backend_run(backend, sampler)
    assert isinstance(final, Finished), final
    return np.asarray(final.images[0])


def plain_scheduler(base, sampler: str):
    """The sampler's scheduler made with diffusers alone, from the model's own configuration."""
    import diffusers

    class_name, overrides, _ = SCHEDULERS[sampler]
    cls = type(base) if class_name is None else getattr(diffusers, class_name)
    return cls.from_config(base.config, **overrides)


def plain_pixels(pipe, sampler: str) -> np.ndarray:
    base = pipe.scheduler
    pipe.scheduler = plain_scheduler(base, sampler)
    try:
        image = pipe(
            prompt=PROMPT,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            width=MODEL_SIZE,
            height=MODEL_SIZE,
            generator=[torch.Generator("cpu").manual_seed(SEED)],
        ).images[0]
    finally:
        pipe.scheduler = base
    return np.asarray(image)


@pytest.mark.parametrize(
    "sampler", [name for name in SCHEDULERS if name not in BROKEN_IN_DIFFUSERS]
)
def test_one_seed_gives_the_same_pixels_twice_and_as_plain_diffusers(
    backend, plain_pipeline, sampler
):
    first = backend_pixels(backend, sampler)
    torch.manual_seed(1234)  # global random state must not matter: only the run's generator
    second = backend_pixels(backend, sampler)
    assert np.array_equal(first, second), (
        f"{sampler}: two runs with seed {SEED} differ by up to "
        f"{int(np.abs(first.astype(int) - second.astype(int)).max())}"
    )
    torch.manual_seed(999)
    plain = plain_pixels(plain_pipeline, sampler)
    assert np.array_equal(first, plain), (
        f"{sampler}: the backend's pixels differ from plain diffusers' by up to "
        f"{int(np.abs(first.astype(int) - plain.astype(int)).max())}"
    )


def test_tracked_step_keeps_the_schedulers_signature():
    """Pipelines pass ``generator`` and ``eta`` only when ``inspect.signature(scheduler.step)``
    lists them; the wrapper must show the real step's parameters."""
    from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler

    for scheduler in (EulerAncestralDiscreteScheduler(), DDIMScheduler()):
        before = inspect.signature(scheduler.step)
        X0Tracker(scheduler)
        assert inspect.signature(scheduler.step) == before
        assert {"generator"} <= set(before.parameters)


@pytest.mark.parametrize("sampler", sorted(BROKEN_IN_DIFFUSERS))
def test_a_sampler_diffusers_cannot_run_on_the_model_is_refused_with_one_that_works(
    backend, plain_pipeline, sampler
):
    with pytest.raises(IndexError):  # when diffusers fixes it, lift the refusal
        plain_pixels(plain_pipeline, sampler)
    # not offered for this model, so the validation refuses it, naming the samplers that run
    with pytest.raises(InvalidRequest, match=r"use one of: .*DPM\+\+ 2M, DDIM"):
        backend_run(backend, sampler)
    # and a scheduler made for it anyway (an app's own pipeline) is refused with the reason
    with pytest.raises(SchedulerChoiceError, match=r"diffusers#12771\); use 'DPM\+\+ 2M'"):
        make_scheduler(plain_pipeline.scheduler, sampler)
