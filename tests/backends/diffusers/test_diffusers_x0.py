"""The x0 estimate taken at each scheduler step agrees with each scheduler's own notion of the
predicted clean sample, for every parameterisation the backend supports."""

from __future__ import annotations

import pytest
import torch

from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker, parameterisation_of

SD_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
}
STOCHASTIC = ("EulerAncestral", "DDPM", "LCM")


def steps_with_reference(scheduler, steps: int = 4, channels: int = 4):
    """Run ``steps`` scheduler steps on random model outputs; yield (tracked x0, reference)."""
    tracker = X0Tracker(scheduler)
    torch.manual_seed(0)
    sample = torch.randn(1, channels, 8, 8) * scheduler.init_noise_sigma
    for t in scheduler.timesteps[:steps]:
        scheduler.scale_model_input(sample, t)  # as pipelines do (sets the step index)
        model_output = torch.randn_like(sample)
        extra = (
            {"generator": torch.Generator().manual_seed(0)}
            if type(scheduler).__name__.startswith(STOCHASTIC)
            else {}
        )
        out = scheduler.step(model_output, t, sample, return_dict=True, **extra)
        reference = getattr(out, "pred_original_sample", None)
        if reference is None:
            reference = getattr(out, "denoised", None)
        if reference is None:  # multistep solvers keep their x0 predictions
            reference = scheduler.model_outputs[-1]
        yield tracker.take(), reference
        sample = out.prev_sample


@pytest.mark.parametrize(
    ("name", "config", "kind"),
    [
        ("EulerDiscreteScheduler", {}, "sigma"),
        ("EulerDiscreteScheduler", {"prediction_type": "v_prediction"}, "sigma"),
        ("EulerAncestralDiscreteScheduler", {}, "sigma"),
        ("DDIMScheduler", {"clip_sample": False}, "alpha"),
        ("DDIMScheduler", {"clip_sample": False, "prediction_type": "v_prediction"}, "alpha"),
        ("DDPMScheduler", {"clip_sample": False}, "alpha"),
        ("DPMSolverMultistepScheduler", {}, "alpha"),
        ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "alpha"),
        ("DPMSolverMultistepScheduler", {"prediction_type": "v_prediction"}, "alpha"),
        ("UniPCMultistepScheduler", {}, "alpha"),
        ("LCMScheduler", {}, "alpha"),
    ],
)
def test_x0_matches_the_schedulers_own_prediction(name, config, kind):
    import diffusers

    scheduler = getattr(diffusers, name)(**SD_SCHEDULE, **config)
    scheduler.set_timesteps(8)
    assert parameterisation_of(scheduler) == kind
    for x0, reference in steps_with_reference(scheduler):
        assert x0 is not None
        # Karras sigmas are rounded to whole timesteps for alphas_cumprod: close, not equal.
        tolerance = 0.05 if config.get("use_karras_sigmas") else 1e-4
        assert torch.allclose(x0, reference, atol=tolerance, rtol=tolerance)


def test_x0_for_flow_matching_is_where_the_velocity_leads_at_sigma_zero():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(8)
    assert parameterisation_of(scheduler) == "flow"
    tracker = X0Tracker(scheduler)
    torch.manual_seed(0)
    sample = torch.randn(1, 16, 8, 8)
    for index, t in enumerate(scheduler.timesteps[:4]):
        velocity = torch.randn_like(sample)
        after = scheduler.step(velocity, t, sample, return_dict=False)[0]
        x0 = tracker.take()
        # An Euler step moves along the velocity: x_next = x + (sigma_next - sigma) v; the
        # same line reaches sigma = 0 at x0, so x_next = x0 + sigma_next v.
        assert torch.allclose(after, x0 + scheduler.sigmas[index + 1] * velocity, atol=1e-5)
        sample = after


def test_x0_for_flux_packed_latents_keeps_their_shape():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    scheduler.set_timesteps(4, mu=1.0)
    tracker = X0Tracker(scheduler)
    packed = torch.randn(2, 16, 64)
    scheduler.step(torch.randn_like(packed), scheduler.timesteps[0], packed)
    assert tracker.take().shape == packed.shape


def test_the_tracker_leaves_the_step_result_unchanged():
    from diffusers import DPMSolverMultistepScheduler

    tracked, plain = (DPMSolverMultistepScheduler(**SD_SCHEDULE) for _ in range(2))
    X0Tracker(tracked)
    torch.manual_seed(0)
    sample = torch.randn(1, 4, 8, 8)
    for scheduler in (tracked, plain):
        scheduler.set_timesteps(5)
    for t in tracked.timesteps:
        output = torch.randn_like(sample)
        a = tracked.step(output, t, sample, return_dict=False)[0]
        b = plain.step(output, t, sample, return_dict=False)[0]
        assert torch.equal(a, b)
        sample = a


def test_an_unknown_scheduler_gives_no_estimate():
    class Opaque:
        config: dict = {}

        def step(self, model_output, timestep, sample):
            return (sample,)

    scheduler = Opaque()
    tracker = X0Tracker(scheduler)
    scheduler.step(torch.zeros(1), 0, torch.zeros(1))
    assert tracker.take() is None
