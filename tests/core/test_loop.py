"""Your own loop in the widget (``stream_loop`` and ``LiveSteps``): its steps become states
with in-memory previews, Stop leaves the loop, "Use this preview" ends it early with the images
it returns, and a diffusers pipeline called by the author's code reports through
``live.callback_on_step_end`` composed with the author's own callback."""

from __future__ import annotations

import threading
import time

import numpy as np
import PIL.Image
import pytest

from gradio_diffusion_preview import LiveSteps, LoopStopped, cancel_run, finish_run, stream_loop
from gradio_diffusion_preview.testing.file_writes import forbidden_writes, watch_writes

STEPS = 8


class GatedLoop:
    """A loop of ``STEPS`` steps that waits, after step ``gate_at``, until the test lets it go:
    the test acts (Stop, finish early) at a known step, whatever the machine's speed."""

    def __init__(self, gate_at: int = 3) -> None:
        self.gate_at, self.gate = gate_at, threading.Event()
        self.reported: list[int] = []
        self.stopped_by: BaseException | None = None

    def __call__(self, live: LiveSteps) -> PIL.Image.Image:
        value = 0
        try:
            for index in range(live.total_steps):
                value = (index + 1) * 30
                live.step(index + 1, preview=np.full((16, 16, 3), value, np.uint8))
                self.reported.append(index + 1)
                if index + 1 == self.gate_at:
                    assert self.gate.wait(60), "the test never let the loop go"
                if live.finish_requested:
                    break
        except LoopStopped as stop:
            self.stopped_by = stop
            raise
        return PIL.Image.new("RGB", (32, 32), (value, 0, 0))


def test_a_loop_streams_every_step_with_an_in_memory_preview_and_its_image():
    loop = GatedLoop(gate_at=0)
    writes: list[str] = []
    with watch_writes(writes):
        states = list(stream_loop(loop, steps=STEPS, prompt="a red circle", seed=5))
    assert states[-1].status == "done", states[-1].message
    shown = [s.step for s in states if s.preview]  # latest wins: some steps may be skipped
    assert shown and shown == sorted(shown) and set(shown) <= set(range(1, STEPS + 1))
    assert all(s.preview.startswith("data:image/") for s in states if s.preview)
    assert states[-1].step == STEPS and states[-1].total_steps == STEPS
    assert states[-1].images[0].getpixel((0, 0)) == (STEPS * 30, 0, 0)
    assert states[-1].seeds == [5] and states[-1].params.prompt == "a red circle"
    assert states[-1].run_id and states[-1].model == "your loop"
    assert not forbidden_writes(writes, ())


def test_stop_leaves_the_loop_at_the_step_it_reached():
    loop = GatedLoop(gate_at=3)
    states = []
    for state in stream_loop(loop, steps=STEPS):
        states.append(state)
        if state.step == 3 and not loop.gate.is_set():
            assert cancel_run(state.run_id)
            loop.gate.set()
    assert states[-1].status == "cancelled"
    assert loop.reported == [1, 2, 3]
    assert isinstance(loop.stopped_by, LoopStopped)


def test_use_this_preview_finishes_early_with_the_loops_image():
    loop = GatedLoop(gate_at=3)
    states = []
    for state in stream_loop(loop, steps=STEPS):
        states.append(state)
        if state.step == 3 and not loop.gate.is_set():
            assert finish_run(state.run_id)
            loop.gate.set()
    final = states[-1]
    assert final.status == "done", final.message
    assert loop.reported == [1, 2, 3]
    assert final.images[0].getpixel((0, 0)) == (90, 0, 0)
    assert final.params.steps_done == 3 and final.message == "Finished early at step 3 of 8."


def test_a_loop_that_raises_fails_with_its_error_named():
    def broken(live: LiveSteps):
        live.step(1)
        raise RuntimeError("the VAE is on another device")

    states = list(stream_loop(broken, steps=4))
    assert states[-1].status == "error" and states[-1].reason == "backend_error"
    assert "RuntimeError: the VAE is on another device" in states[-1].message


def test_a_loop_that_returns_no_image_is_told_what_to_return():
    states = list(stream_loop(lambda live: None, steps=2))
    assert "must return a PIL image or a list of them" in states[-1].message


@pytest.mark.slow
@pytest.mark.torch
def test_a_pipeline_called_by_the_author_reports_through_the_composed_callback(tiny_sd15):
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15)
    seen: list[int] = []

    class AuthorsCallback(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            seen.append(step_index)
            return callback_kwargs

    def call(live: LiveSteps, **extra):
        callbacks = MultiPipelineCallbacks([live.callback_on_step_end, AuthorsCallback()])
        generator = torch.Generator("cpu").manual_seed(3)
        return pipe(
            "a red circle",
            num_inference_steps=4,
            width=64,
            height=64,
            generator=generator,
            callback_on_step_end=callbacks,
            **extra,
        ).images

    states = list(stream_loop(call, steps=4, width=64, height=64))
    assert states[-1].status == "done", states[-1].message
    assert seen == [0, 1, 2, 3]
    shown = [s.step for s in states if s.preview]
    assert shown and set(shown) <= {1, 2, 3, 4} and states[-1].step == 4
    direct = pipe(
        "a red circle",
        num_inference_steps=4,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(3),
    ).images[0]
    assert np.array_equal(np.asarray(states[-1].images[0]), np.asarray(direct))

    class HoldUntilStopped(PipelineCallback):
        """Holds the pipeline after its second step until the run is stopped, so the test
        stops it at a known step on any machine."""

        tensor_inputs = ["latents"]

        def __init__(self, live):
            super().__init__()
            self.live = live

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            deadline = time.monotonic() + 60  # only against a hang
            while step_index == 1 and not self.live.stopped and time.monotonic() < deadline:
                time.sleep(0.01)
            return callback_kwargs

    def held(live: LiveSteps):
        callbacks = MultiPipelineCallbacks(
            [live.callback_on_step_end, AuthorsCallback(), HoldUntilStopped(live)]
        )
        return pipe(
            "a red circle",
            num_inference_steps=4,
            width=64,
            height=64,
            callback_on_step_end=callbacks,
        ).images

    seen.clear()
    states = []
    for state in stream_loop(held, steps=4, width=64, height=64):
        states.append(state)
        if state.step == 2:
            cancel_run(state.run_id)
    assert states[-1].status == "cancelled"
    assert seen == [0, 1]  # the live callback left the pipeline at the next step
