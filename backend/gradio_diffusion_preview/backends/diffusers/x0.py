"""The model's current estimate of the final image (x0), taken at each scheduler step.

Why not the latent the step callback receives: after step ``t`` the pipeline holds ``x_{t-1}``,
which is still mostly noise early on. A preview of it is grey static for half the run. What a
person wants to see is where the run is heading: the denoiser's prediction of the clean latent.

Why not the scheduler's ``pred_original_sample``: only some schedulers compute it (DDIM, Euler,
LMS do; DPM-Solver++, UniPC and PNDM do not), and pipelines call ``step(..., return_dict=False)``
and keep only the new sample, so it never reaches the callback. Calling ``step`` a second time is
not possible either: multistep schedulers keep state.

So ``X0Tracker`` wraps the per-run scheduler's ``step``: it calls the real ``step`` unchanged, and
from the same inputs (the sample before the step, the model's output and the noise level of that
step) computes x0 with the closed form for the scheduler's parameterisation:

- variance preserving, alpha-based schedulers (DDIM, DDPM, PNDM, DPM-Solver++, UniPC, LCM), with
  ``a = alphas_cumprod[t]`` and ``x_t = sqrt(a) x0 + sqrt(1 - a) eps`` (Ho et al. 2020):
  epsilon: ``x0 = (x_t - sqrt(1 - a) eps) / sqrt(a)``; v: ``x0 = sqrt(a) x_t - sqrt(1 - a) v``
  (Salimans & Ho 2022); sample: the output itself.
- variance exploding, sigma-based schedulers (Euler, Euler ancestral, LMS, Heun), whose samples are
  ``x = x0 + sigma eps`` (Karras et al. 2022): epsilon: ``x0 = x - sigma eps``;
  v: ``x0 = x / (sigma^2 + 1) - v sigma / sqrt(sigma^2 + 1)``.
- EDM schedulers: their own ``precondition_outputs`` is exactly the denoiser.
- flow matching (SD3, Flux: ``FlowMatchEulerDiscreteScheduler``, or ``flow_prediction``), with
  ``x_t = (1 - sigma) x0 + sigma noise`` and the model predicting ``v = noise - x0``
  (Lipman et al. 2023; Esser et al. 2024): ``x0 = x_t - sigma v``.

The arithmetic is a few element-wise operations on the latent, on the device, with the noise
level looked up without a device sync (``alphas_cumprod`` is moved to the device once and indexed
with the timestep tensor). An unknown scheduler gives no estimate, and the preview falls back to
the latent itself.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

Parameterisation = Literal["alpha", "sigma", "edm", "flow"]


def parameterisation_of(scheduler: Any) -> Parameterisation | None:
    """How ``scheduler`` relates samples, noise levels and model outputs, or None if unknown."""
    config = scheduler.config
    if (
        "FlowMatch" in type(scheduler).__name__
        or config.get("use_flow_sigmas")
        or config.get("prediction_type") == "flow_prediction"
    ):
        return "flow"
    if hasattr(scheduler, "precondition_outputs") and hasattr(scheduler, "sigmas"):
        return "edm"
    sigma = getattr(scheduler, "init_noise_sigma", 1.0)
    if hasattr(scheduler, "sigmas") and float(sigma) > 1.0:
        return "sigma"
    if getattr(scheduler, "alphas_cumprod", None) is not None:
        return "alpha"
    return None


def is_flow_matching(scheduler: Any) -> bool:
    return parameterisation_of(scheduler) == "flow"


class X0Tracker:
    """Wraps ``scheduler.step`` (on this instance only) to keep the latest x0 estimate.

    The wrapper shows the real ``step``'s signature (``functools.wraps``): pipelines pass
    ``generator`` and ``eta`` only when ``inspect.signature(scheduler.step)`` lists them, and an
    ancestral sampler given no generator draws its noise from torch's global random state, so a
    seed would not reproduce its image.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.kind: Parameterisation | None = None
        self.prediction = scheduler.config.get("prediction_type", "epsilon")
        self._latest: torch.Tensor | None = None
        self._alphas: dict[torch.device, torch.Tensor] = {}
        self._failed = False
        self._step = scheduler.step
        self._wrapper = functools.wraps(self._step)(self._tracked_step_function())
        scheduler.step = self._wrapper

    def take(self) -> torch.Tensor | None:
        """The estimate from the most recent step (then forgotten, so memory is not held)."""
        latest, self._latest = self._latest, None
        return latest

    def release(self) -> None:
        """Forget the estimates and give the scheduler its own ``step`` back, once its run has
        ended. The wrapper and the scheduler refer to each other: left so, a run's scheduler,
        its tensors and this tracker wait for Python's cycle collector."""
        self._latest = None
        self._alphas.clear()
        if self._wrapper is not None and vars(self.scheduler).get("step") is self._wrapper:
            del self.scheduler.step
        self._wrapper = None  # it refers to this tracker too

    def _tracked_step_function(self):
        """A plain function calling ``_tracked_step`` (a bound method cannot take the real
        step's name and signature)."""

        def tracked_step(*args, **kwargs):
            return self._tracked_step(*args, **kwargs)

        return tracked_step

    def _tracked_step(self, model_output, timestep, sample, *args, **kwargs):
        result = self._step(model_output, timestep, sample, *args, **kwargs)
        if not self._failed:
            try:
                self._latest = self.estimate(model_output, timestep, sample)
            except Exception:  # a preview must never break a run
                log.exception(
                    "x0 estimate failed for %s; previews show the noisy latent",
                    type(self.scheduler).__name__,
                )
                self._failed = True
                self._latest = None
        return result

    def _sigma_of_last_step(self) -> float | torch.Tensor:
        """The noise level of the step just taken: a float when the scheduler keeps its sigmas
        on the CPU (most do), else a device scalar, so that reading it never syncs a GPU."""
        index = getattr(self.scheduler, "step_index", None)
        if index is None:
            raise ValueError("scheduler has no step index")
        sigma = self.scheduler.sigmas[index - 1]  # step() has already advanced the index
        return float(sigma) if sigma.device.type == "cpu" else sigma

    def estimate(
        self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor
    ) -> torch.Tensor | None:
        if self.kind is None:
            self.kind = parameterisation_of(self.scheduler)
        kind = self.kind
        if kind is None:
            return None
        if kind == "flow":
            return sample - self._sigma_of_last_step() * model_output
        if kind == "edm":
            sigma = self._sigma_of_last_step()
            return self.scheduler.precondition_outputs(sample, model_output, sigma)
        if self.prediction == "sample":
            return model_output
        if kind == "sigma":
            sigma = self._sigma_of_last_step()
            if self.prediction == "v_prediction":
                return sample / (sigma**2 + 1) - model_output * (sigma / (sigma**2 + 1) ** 0.5)
            return sample - sigma * model_output
        # alpha-based: look the noise level up on the device, without a sync
        device = sample.device
        if device not in self._alphas:
            self._alphas[device] = self.scheduler.alphas_cumprod.to(device, torch.float32)
        alphas = self._alphas[device]
        if isinstance(timestep, torch.Tensor):
            index = timestep.to(device).long().clamp(0, len(alphas) - 1)
        else:
            index = torch.tensor(min(max(int(timestep), 0), len(alphas) - 1), device=device)
        alpha = alphas[index].to(sample.dtype).reshape(-1, *([1] * (sample.ndim - 1)))
        if self.prediction == "v_prediction":
            return alpha.sqrt() * sample - (1 - alpha).sqrt() * model_output
        return (sample - (1 - alpha).sqrt() * model_output) / alpha.sqrt()
