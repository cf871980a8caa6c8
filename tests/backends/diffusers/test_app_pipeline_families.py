"""An app's own loaded pipeline (``PipelineBackend``) is taken or refused, and runs, as the
diffusers backend takes and runs the same model from a folder: a preview at every step, cancel
and finish early within a step (counted in denoising iterations) on a loop that honours
``_interrupt`` and on one that ignores it, PixArt's older ``callback``, and a video or
pixel-space pipeline refused when the backend is made, not after a whole run.

The pipelines are the tiny family builds of ``tests/support/tiny_families.py`` (diffusers' own
test configs), loaded with ``DiffusionPipeline.from_pretrained`` as an app loads its model.
"""

from __future__ import annotations

import pytest
from step_counter import StepCounter
from tiny_families import build_family
from waiting import wait_for_runs_to_end

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.diffusers.app_pipeline import PipelineBackend
from gradio_diffusion_preview.run_handles import cancel_run, finish_run

pytestmark = pytest.mark.slow
SIZE = 64
STEPS = 4


@pytest.fixture(scope="module")
def app_pipe(tmp_path_factory):
    """``app_pipe(name)``: family ``name``'s tiny pipeline, loaded as an app holds it."""
    from diffusers import DiffusionPipeline
    from testenv import shared_tmp

    base = shared_tmp(tmp_path_factory)
    loaded = {}

    def get(name: str):
        if name not in loaded:
            folder = build_family(name, base / f"tiny-family-{name}")
            loaded[name] = DiffusionPipeline.from_pretrained(folder)
        return loaded[name]

    return get


def signalled(backend, signal, steps: int = 8):
    """A run's states and its iteration count, ``signal`` (cancel or finish) given at step 2."""
    with StepCounter(backend) as iterations:
        states = []
        for state in stream(
            backend, prompt="a fox", steps=steps, width=SIZE, height=SIZE, min_interval=0.0
        ):
            states.append(state)
            # step 2, or the first after it where a busy machine let the newer state win
            if (state.step or 0) >= 2 and iterations.at_signal is None:
                assert signal(state.run_id)
                iterations.mark()
                iterations.signalled_at = state.step
    return states, iterations


@pytest.mark.parametrize("name", ["lcm", "pixart-alpha"])
def test_an_app_pipeline_previews_every_step(app_pipe, name):
    """LCM's loop ignores ``_interrupt``; PixArt has only the older ``callback`` (refused by
    ``PipelineBackend`` before, though the diffusers backend runs it)."""
    backend = PipelineBackend(app_pipe(name), name=name)
    with StepCounter(backend) as iterations:
        states = list(
            stream(
                backend,
                prompt="a red fox",
                steps=STEPS,
                seed=3,
                width=SIZE,
                height=SIZE,
                min_interval=0.0,
            )
        )
    final = states[-1]
    assert final.status == "done", final.message
    assert iterations.count == STEPS
    previewed = [state.step for state in states if state.status == "running" and state.preview]
    assert previewed and previewed == sorted(previewed), previewed
    assert set(previewed) <= set(range(1, STEPS + 1)), previewed
    assert final.images[0].size == (SIZE, SIZE)


@pytest.mark.parametrize("name", ["lcm", "pixart-alpha"])
def test_an_app_pipeline_finishes_early_within_a_step(app_pipe, name):
    """On loops that ignore ``_interrupt`` (LCM) or the callback's return (PixArt): the run
    leaves at once and decodes the estimate itself."""
    backend = PipelineBackend(app_pipe(name), name=name)
    states, iterations = signalled(backend, finish_run)
    final = states[-1]
    assert final.status == "done", final.message
    assert iterations.after_signal <= 1
    assert final.params.steps_done <= iterations.signalled_at + 1
    assert final.images[0].size == (SIZE, SIZE)
    wait_for_runs_to_end(backend)


@pytest.mark.parametrize("name", ["lcm", "pixart-alpha"])
def test_an_app_pipeline_cancels_within_a_step(app_pipe, name):
    backend = PipelineBackend(app_pipe(name), name=name)
    states, iterations = signalled(backend, cancel_run)
    assert states[-1].status == "cancelled", states[-1].message
    assert iterations.after_signal <= 1
    wait_for_runs_to_end(backend)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("wan", "cannot run WanPipeline, a video pipeline: it makes still images"),
        ("if", "no VAE (it denoises pixels"),
    ],
)
def test_a_pipeline_the_diffusers_backend_refuses_is_refused_when_made(app_pipe, name, says):
    """Wan has ``callback_on_step_end`` but makes video (it failed after the whole run, on
    ``.images``); DeepFloyd IF has only the older callback and no VAE to finish early with."""
    with pytest.raises(TypeError) as refused:
        PipelineBackend(app_pipe(name))
    assert says in str(refused.value)


def test_a_request_the_pipeline_cannot_run_names_the_pipeline_backend(app_pipe):
    """LCM takes no negative prompt: refused before any step, by the backend that was asked
    (it said 'diffusers' for an app's pipeline)."""
    backend = PipelineBackend(app_pipe("lcm"), name="lcm")
    with StepCounter(backend) as iterations:
        states = list(
            stream(
                backend, prompt="a fox", negative_prompt="blur", steps=2, width=SIZE, height=SIZE
            )
        )
    final = states[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert final.message.startswith("Backend 'pipeline' cannot run this request: "), final.message
    assert "LatentConsistencyModelPipeline takes no negative prompt" in final.message
    assert iterations.count == 0


def test_the_loop_callback_finishes_early_within_a_step_where_interrupt_is_ignored(app_pipe):
    """``live.callback_on_step_end`` on LCM (its loop ignores ``_interrupt``): "Use this
    preview" leaves the pipeline within a step and the run decodes its latents; it used to set
    ``_interrupt`` and let the pipeline run on to its last step."""
    from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

    from gradio_diffusion_preview import stream_loop

    pipe = app_pipe("lcm")
    iterations = []

    class Count(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            iterations.append(step_index)
            return callback_kwargs

    def my_loop(live):
        callbacks = MultiPipelineCallbacks([Count(), live.callback_on_step_end])
        return pipe(
            "a fox", num_inference_steps=8, width=SIZE, height=SIZE, callback_on_step_end=callbacks
        ).images

    states, at_signal = [], None
    for state in stream_loop(my_loop, steps=8, width=SIZE, height=SIZE, min_interval=0.0):
        states.append(state)
        if (state.step or 0) >= 2 and at_signal is None:  # 2, or the next a busy machine sent
            assert finish_run(state.run_id)
            at_signal, signalled_at = len(iterations), state.step
    final = states[-1]
    assert final.status == "done", final.message
    assert len(iterations) - at_signal <= 1, iterations
    assert final.params.steps_done <= signalled_at + 1
    assert final.images[0].size == (SIZE, SIZE)
