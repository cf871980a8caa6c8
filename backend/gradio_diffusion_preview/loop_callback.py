"""``LiveSteps.callback_on_step_end``: a diffusers ``PipelineCallback`` reporting a pipeline's
steps to a ``LiveSteps``. A module of its own because it imports diffusers (only when asked)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from diffusers.callbacks import PipelineCallback

from .backends.diffusers.finishing import honours_interrupt

if TYPE_CHECKING:
    from .loop import LiveSteps


class LiveStepsCallback(PipelineCallback):
    """After every denoising iteration: a step with a latent preview; on Stop, leave the
    pipeline (``LoopStopped``); on "Use this preview", set the pipeline's ``_interrupt`` so it
    decodes the latents it has, or, where its loop ignores ``_interrupt``, leave it
    (``FinishedEarly``: the run decodes them). Composes with other callbacks
    (``MultiPipelineCallbacks``): the tensors pass through unchanged."""

    tensor_inputs = ["latents"]

    def __init__(self, live: LiveSteps) -> None:
        super().__init__()
        self.live = live

    def callback_fn(
        self, pipeline: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        live = self.live
        iterations = max(int(getattr(pipeline, "num_timesteps", 0) or 0), live.total_steps, 1)
        step = min(live.total_steps, math.ceil((step_index + 1) * live.total_steps / iterations))
        try:
            if step > live.steps_done:
                live.step(step, latents=callback_kwargs.get("latents"))
            elif live.stopped:
                live.step(step)  # raises LoopStopped
        except Exception:
            pipeline._interrupt = True
            raise
        if live.finish_requested:
            pipeline._interrupt = True
            if not honours_interrupt(pipeline):  # it would run on to its last step
                from .loop import FinishedEarly

                raise FinishedEarly(pipeline, callback_kwargs["latents"])
        return callback_kwargs


def make_callback(live: LiveSteps) -> LiveStepsCallback:
    return LiveStepsCallback(live)
