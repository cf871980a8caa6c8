"""Seeds against real Gradio apps whose seed input has a maximum, as FLUX- and SD-style Spaces'
sliders do (2**31 - 1): runs without a seed draw within what the app declares and all finish;
an explicit seed outside is refused before the run, naming the app's range; where the app
declares nothing, random seeds stay within 2**31 - 1 and explicit ones go through.

Gradio refuses a value above a slider's or number box's maximum ("Value 3901121542 is greater
than maximum value 2147483647"), so a seed drawn up to 2**32 - 1 failed about half the runs.
The apps run on loopback with this venv's Gradio (6.x); test_remote_gradio_spaces.py checks
the same on Gradio 5 too.
"""

from __future__ import annotations

import gradio as gr
import PIL.Image
import pytest

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.remote_gradio.backend import RemoteGradioBackend
from gradio_diffusion_preview.endpoints import Endpoint
from gradio_diffusion_preview.request import (
    MAX_SEED,
    RANDOM_SEED_MAX,
    InvalidRequest,
    build_request,
    validate_request,
)

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

SPACE_CAP = 2**31 - 1
RUNS = 20


def seed_app(seed_input: gr.components.Component, received: list[int]) -> gr.Blocks:
    """A text-to-image app whose /infer(prompt, seed) records the seed it was given and
    returns an image; ``seed_input`` is its seed component (a slider or a number box)."""

    def infer(prompt: str, seed: float):
        received.append(int(seed))
        return PIL.Image.new("RGB", (64, 64), (200, 30, int(seed) % 256))

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        seed_input.render()
        output = gr.Image(label="Result")
        gr.Button("Run").click(infer, [prompt, seed_input], output, api_name="infer")
    return demo


def gradio_backend(url: str) -> RemoteGradioBackend:
    return RemoteGradioBackend(Endpoint(id="space", kind="gradio", url=url, timeout=60.0))


def run_to_the_end(backend: RemoteGradioBackend, **fields):
    states = list(stream(backend, prompt="a red fox", **fields))
    return states[-1]


CAPPED_INPUTS = {
    "slider": lambda: gr.Slider(0, SPACE_CAP, value=0, step=1, label="Seed", render=False),
    "number box": lambda: gr.Number(
        value=0, minimum=0, maximum=SPACE_CAP, precision=0, label="Seed", render=False
    ),
}


@pytest.mark.parametrize("kind", list(CAPPED_INPUTS))
def test_runs_without_a_seed_all_finish_on_an_app_capped_at_2_31(serve, kind):
    received: list[int] = []
    backend = gradio_backend(serve(seed_app(CAPPED_INPUTS[kind](), received)))
    finals = [run_to_the_end(backend) for _ in range(RUNS)]
    failed = [state.message for state in finals if state.status != "done"]
    assert not failed, failed
    assert len(received) == RUNS and all(0 <= seed <= SPACE_CAP for seed in received), received
    assert len(set(received)) > RUNS // 2  # random, not one fixed seed
    assert backend.capabilities.seed_range == (0, SPACE_CAP)


@pytest.mark.parametrize("kind", list(CAPPED_INPUTS))
def test_a_seed_above_the_apps_cap_is_refused_before_the_run_with_its_range(serve, kind):
    received: list[int] = []
    backend = gradio_backend(serve(seed_app(CAPPED_INPUTS[kind](), received)))
    too_big = SPACE_CAP + 1
    with pytest.raises(InvalidRequest) as refused:
        validate_request(build_request(backend, {"prompt": "fox", "seed": too_big}), backend)
    message = str(refused.value)
    assert f"seed={too_big}" in message and f"from 0 to {SPACE_CAP}" in message, message
    final = run_to_the_end(backend, seed=too_big)
    assert final.status == "error" and final.reason == "invalid_request"
    assert f"from 0 to {SPACE_CAP}" in final.message, final.message
    assert received == []  # refused here: the app was never called
    assert run_to_the_end(backend, seed=SPACE_CAP).status == "done"
    assert received == [SPACE_CAP]


def test_random_seeds_are_drawn_within_a_smaller_declared_range(serve):
    received: list[int] = []
    box = gr.Number(value=10, minimum=10, maximum=40, precision=0, label="Seed", render=False)
    backend = gradio_backend(serve(seed_app(box, received)))
    finals = [run_to_the_end(backend) for _ in range(RUNS)]
    assert all(state.status == "done" for state in finals), [s.message for s in finals]
    assert all(10 <= seed <= 40 for seed in received) and len(received) == RUNS, received
    final = run_to_the_end(backend, seed=41)
    assert final.status == "error" and "from 10 to 40" in final.message, final.message


def test_where_the_app_declares_no_maximum_random_seeds_stay_within_2_31(serve):
    received: list[int] = []
    box = gr.Number(value=0, precision=0, label="Seed", render=False)
    backend = gradio_backend(serve(seed_app(box, received)))
    finals = [run_to_the_end(backend) for _ in range(RUNS)]
    assert all(state.status == "done" for state in finals), [s.message for s in finals]
    assert all(0 <= seed <= RANDOM_SEED_MAX for seed in received), received
    # nothing declared, nothing refused: an explicit seed up to ours goes to the app
    assert run_to_the_end(backend, seed=MAX_SEED).status == "done"
    assert received[-1] == MAX_SEED
