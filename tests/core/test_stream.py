"""The glue: ``stream`` turns backend events into RunStates, errors into error states, and
stops the backend when the consumer goes away."""

import time

import pytest
from toy_backends import (
    BadPreviewBackend,
    BatchPreviewBackend,
    CountingBackend,
    FailingBackend,
    Gate,
    RaisingBackend,
    WaitingBackend,
    registry_with,
)

from gradio_diffusion_preview import Failed, Status, finish_run, stream
from gradio_diffusion_preview.progress import RUN_DURATIONS
from gradio_diffusion_preview.run_engine import ENGINE


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
    assert final.preview is None and final.previews == []  # the images replace it


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
    final, asked = None, False
    for state in states:
        if state.step >= 5 and not asked:  # steps coalesce on a busy machine: 5 may not show
            asked = finish_run(state.run_id)
            assert asked
        final = state
    assert final.status == "done" and final.images and final.step < 400
    assert "Finished early" in final.message
    assert not finish_run(final.run_id)  # the run is over


def test_min_interval_coalesces_frames_but_not_the_generation(registry, counting):
    states = list(stream("counting", registry=registry, prompt="p", steps=300, min_interval=0.5))
    assert counting.steps_run == 300
    assert len([s for s in states if s.status == "running"]) < 20
    assert states[-1].status == "done"


# --- backends that wait, failures with reasons, batches, broken previews ----------------------


def test_a_waiting_backend_streams_its_phase_position_and_service_eta():
    backend = WaitingBackend(
        [
            (Status("queued", "In the queue", position=3, queue_size=7, eta=30.0), 0.05),
            (Status("loading", eta=20.0), 0.05),
            (Status("generating"), 0.05),
        ]
    )
    states = list(stream(backend, prompt="p", steps=20, min_interval=0))
    phases = [(s.phase, s.queue_position, s.queue_size) for s in states if s.phase]
    assert phases == [("queued", 3, 7), ("loading", None, None), ("generating", None, None)]
    queued = next(s for s in states if s.phase == "queued")
    assert queued.message == "In the queue" and 29.0 < queued.eta <= 30.0
    loading = next(s for s in states if s.phase == "loading")
    assert loading.message == "Loading the model…"
    assert all(s.step == 0 for s in states)  # nobody fakes steps
    final = states[-1]
    assert final.status == "done" and final.phase is None and len(final.images) == 1


class ManualClock:
    """A clock that moves only when the test moves it: a run "takes" 2.3 s without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_waiting_runs_eta_is_learned_from_recent_runs_and_counts_down(monkeypatch):
    # the engine's injectable clock and heartbeat: time passes when the test says so, and a
    # state comes at each heartbeat while the backend waits at its gate
    clock = ManualClock()
    monkeypatch.setattr(ENGINE, "clock", clock)
    monkeypatch.setattr(ENGINE, "heartbeat", 0.01)
    RUN_DURATIONS.clear()

    def run(model: str, seconds_per_state: float, waiting_states: int) -> list:
        gate = Gate()
        states = []
        for state in stream(
            WaitingBackend([(Status("generating"), 0)], gate=gate), prompt="p", model=model
        ):
            states.append(state)
            if state.phase:
                clock.now += seconds_per_state
                if sum(1 for s in states if s.phase) == waiting_states:
                    gate.open()
        return states

    first = run("m1", 2.3, 1)
    assert first[-1].status == "done" and first[-1].elapsed == pytest.approx(2.3)
    assert all(s.eta is None for s in first if s.phase)  # nothing to learn from yet
    second = [s for s in run("m1", 0.5, 4) if s.phase]
    etas = [s.eta for s in second]
    assert len(etas) >= 4 and all(eta is not None for eta in etas)
    # counted down from the first run's 2.3 s by the 0.5 s that passed between states
    assert etas[:4] == pytest.approx([2.3, 1.8, 1.3, 0.8])
    assert etas == sorted(etas, reverse=True)
    other_model = [s for s in run("m2", 0.5, 1) if s.phase]
    assert other_model[0].eta is None  # learned per backend and model


def test_cancelling_a_waiting_run_returns_at_once():
    backend = WaitingBackend([(Status("generating"), 30.0)])
    states = stream(backend, prompt="p")
    for state in states:
        if state.phase == "generating":
            break
    states.close()
    # the backend's 30 s wait was cut short by the cancel, not waited out
    assert backend.returned and backend.cut_short


def test_a_failure_reaches_the_state_with_its_reason_and_retry_after():
    backend = WaitingBackend(failure=Failed("Rate limited. Fix: wait.", "rate_limited", 42.0))
    final = list(stream(backend, prompt="p"))[-1]
    assert (final.status, final.reason, final.retry_after) == ("error", "rate_limited", 42.0)
    assert final.message == "Rate limited. Fix: wait."


def test_a_batch_previewed_image_by_image_streams_one_preview_per_image():
    registry = registry_with(BatchPreviewBackend())
    states = list(
        stream(
            "batch-preview", registry=registry, prompt="p", steps=4, num_images=3, min_interval=0
        )
    )
    running = [s for s in states if s.status == "running" and s.step > 0]
    assert running and all(s.preview is None and len(s.previews) == 3 for s in running)
    assert len(set(running[-1].previews)) == 3
    assert all(p.startswith("data:image/jpeg;base64,") for p in running[-1].previews)
    assert states[-1].status == "done" and len(states[-1].images) == 3


def test_a_preview_that_is_not_an_image_fails_only_that_run(registry):
    backend = BadPreviewBackend()
    states = list(stream(backend, prompt="p", steps=6, min_interval=0))
    final = states[-1]
    assert final.status == "error" and final.reason == "backend_error"
    assert "'bad-preview' sent a preview that is not an image at step " in final.message
    assert "float64 array" in final.message and "uint8" in final.message
    assert list(stream("counting", registry=registry, prompt="p", steps=2))[-1].status == "done"


def test_an_unknown_backend_and_a_refused_request_carry_invalid_request(registry):
    (unknown,) = stream("nope", registry=registry, prompt="p")
    (invalid,) = stream("counting", registry=registry, prompt="p", steps=0)
    assert unknown.reason == invalid.reason == "invalid_request"
