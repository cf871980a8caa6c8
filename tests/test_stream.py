"""The glue: ``stream`` turns backend events into RunStates, errors into error states, and
stops the backend when the consumer goes away."""

import time

import pytest
from toy_backends import CountingBackend, FailingBackend, RaisingBackend, registry_with

from gradio_diffusion_preview import finish_run, stream


@pytest.fixture
def counting():
    return CountingBackend()


@pytest.fixture
def registry(counting):
    return registry_with(counting, FailingBackend(), RaisingBackend())


def test_a_run_streams_previews_progress_and_final_images(registry, counting):
    counting.step_seconds = 0.01
    states = list(
        stream(
            "counting",
            registry=registry,
            prompt="p",
            steps=12,
            seed=5,
            num_images=2,
            min_interval=0,
        )
    )
    running = [s for s in states if s.status == "running" and s.step > 0]
    assert [s.step for s in running] == sorted(s.step for s in running)
    assert len({s.preview for s in running}) >= 3
    assert all(s.preview.startswith("data:image/jpeg;base64,") for s in running)
    final = states[-1]
    assert final.status == "done" and final.step == final.total_steps == 12
    assert final.seeds == [5, 6] and len(final.images) == 2
    assert final.images[0].size == (64, 64)
    assert final.backend == "counting" and final.model == "flat" and final.eta == 0.0
    assert running[-1].steps_per_second is not None and running[-1].eta is not None


def test_invalid_request_ends_in_an_error_state_naming_the_field(registry):
    (state,) = list(stream("counting", registry=registry, prompt="p", steps=0))
    assert state.status == "error"
    assert "steps=0" in state.message and "counting" in state.message and "Fix:" in state.message


def test_unknown_backend_is_an_error_state_listing_the_registered_ones(registry):
    (state,) = list(stream("nope", registry=registry, prompt="p"))
    assert state.status == "error" and "'nope'" in state.message and "counting" in state.message


def test_a_failed_event_becomes_an_error_state(registry):
    final = list(stream("failing", registry=registry, prompt="p", model="m"))[-1]
    assert final.status == "error" and "503" in final.message


def test_a_raising_backend_becomes_an_error_state_and_the_next_run_works(registry):
    final = list(stream("raising", registry=registry, prompt="p", model="m"))[-1]
    assert final.status == "error"
    assert "RuntimeError" in final.message and "raising" in final.message
    assert list(stream("counting", registry=registry, prompt="p", steps=2))[-1].status == "done"


def test_closing_the_stream_cancels_the_backend_within_one_step(registry, counting):
    counting.step_seconds = 0.02
    states = stream("counting", registry=registry, prompt="p", steps=400, min_interval=0)
    for state in states:
        if state.step >= 3:
            break
    states.close()  # what Gradio does on cancel or disconnect
    stopped_at = counting.steps_run
    time.sleep(0.2)
    assert counting.steps_run - stopped_at <= 1
    assert counting.steps_run < 400


def test_finish_run_ends_early_with_the_current_estimate(registry, counting):
    counting.step_seconds = 0.01
    states = stream("counting", registry=registry, prompt="p", steps=400, min_interval=0)
    final = None
    for state in states:
        if state.step == 5:
            assert finish_run(state.run_id)
        final = state
    assert final.status == "done" and final.images and final.step < 400
    assert "Finished early" in final.message
    assert not finish_run(final.run_id)  # the run is over


def test_min_interval_coalesces_frames_but_not_the_generation(registry, counting):
    states = list(stream("counting", registry=registry, prompt="p", steps=300, min_interval=0.5))
    assert counting.steps_run == 300
    assert len([s for s in states if s.status == "running"]) < 20
    assert states[-1].status == "done"
