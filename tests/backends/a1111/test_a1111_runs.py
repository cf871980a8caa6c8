"""Runs against a loopback AUTOMATIC1111 that another client uses at the same time: our
previews and queue place are our task's own, and stopping our run never stops theirs."""

from __future__ import annotations

import threading

import numpy as np
import PIL.Image
import pytest
from fake_a1111 import FakeA1111, make_backend, make_request, post_txt2img, record, render
from waiting import wait_for

from gradio_diffusion_preview import Failed, Finished, Started, Status, Step, stream

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    server = FakeA1111(step_time=0.04)
    server.start()
    yield server
    server.stop()


class OtherClient:
    """Another program using the same server (a script, the server's own web UI): it posts
    txt2img with its own task id and waits for the answer on a thread."""

    def __init__(self, fake: FakeA1111, prompt: str, steps: int, seed: int = 99) -> None:
        self.task_id = f"task(other-{prompt.replace(' ', '-')})"
        self.spec = {
            "prompt": prompt,
            "seeds": [seed],
            "width": 64,
            "height": 64,
            "steps": steps,
            "checkpoint": "v1-5-pruned-emaonly",
        }
        payload = {
            "prompt": prompt,
            "steps": steps,
            "width": 64,
            "height": 64,
            "seed": seed,
            "force_task_id": self.task_id,
        }
        self.answer = None
        self._thread = threading.Thread(target=self._post, args=(fake.url, payload), daemon=True)
        self._thread.start()

    def _post(self, url: str, payload: dict) -> None:
        self.answer = post_txt2img(url, payload)

    def join(self) -> dict:
        self._thread.join(30)
        return self.answer


def difference(a, b, blocks: int | None = None) -> float:
    """Mean absolute difference per channel (0 to 255) of two images of one size; with
    ``blocks``, of their ``blocks`` x ``blocks`` averages (what JPEG keeps of noise)."""
    if blocks:
        a, b = (image.resize((blocks, blocks), PIL.Image.Resampling.BOX) for image in (a, b))
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


def spec_of(request) -> dict:
    return {
        "prompt": request.prompt,
        "seeds": [request.seed],
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "checkpoint": request.model,
    }


def test_previews_and_steps_are_our_tasks_while_another_clients_job_runs_first(fake):
    fake.lockstep_polls = 2  # every step is seen by at least one whole poll (ours or theirs)
    backend = make_backend(fake.url)
    other = OtherClient(fake, "a blue whale", steps=25)
    wait_for(lambda: fake.current_task == other.task_id, what="the other job to start")
    request = make_request(backend, steps=12, prompt="a red fox")
    seen_globally = []

    def look_at_the_global_progress(event, control):
        # While we wait, the server's global progress is the other client's job.
        if isinstance(event, Status):
            seen_globally.append(backend.client._json("GET", "/sdapi/v1/progress"))

    run = record(backend, request, on_event=look_at_the_global_progress)
    other_answer = other.join()

    assert isinstance(run.events[0], Started) and isinstance(run.last, Finished)
    [queued] = run.of(Status)
    assert (queued.phase, queued.position, queued.queue_size) == ("queued", 1, 1)
    [globally] = seen_globally
    assert globally["state"]["sampling_steps"] == 25  # the other job's, not ours (12)
    steps = run.of(Step)
    assert [s.step for s in steps] == sorted({s.step for s in steps}) and steps[-1].step == 12
    # No step of ours came while the other job ran, and every preview is our picture at that
    # step (JPEG-close), nothing like the other job's.
    other_job, our_job = fake.job(other.task_id), fake.job(run.last.metadata["task_id"])
    assert other_job.steps_done == 25 and not other_job.interrupted
    assert our_job.started >= other_job.ended
    previews = [(s.step, s.preview) for s in steps if s.preview is not None]
    assert [step for step, _ in previews] == list(range(1, 13))
    ours = spec_of(request)
    for step, preview in previews:
        assert difference(preview, render(ours, 0, step / 12), blocks=8) < 4, step
        assert difference(preview, render(other.spec, 0, step / 12), blocks=8) > 8, step
    assert difference(run.last.images[0], render(ours, 0, 1.0)) == 0
    assert other_answer["images"] and not fake.interrupts


def test_our_place_in_the_queue_is_shown_as_it_moves_up(fake):
    backend = make_backend(fake.url)
    first = OtherClient(fake, "a blue whale", steps=25)
    wait_for(lambda: fake.current_task == first.task_id, what="the first job to start")
    second = OtherClient(fake, "a green frog", steps=10)
    wait_for(lambda: second.task_id in fake.pending_tasks, what="the second job to queue")
    run = record(backend, make_request(backend, steps=4))
    places = [(s.position, s.queue_size) for s in run.of(Status)]
    assert places == [(2, 2), (1, 1)]
    assert isinstance(run.last, Finished)
    first.join(), second.join()


def test_a_cancel_while_queued_never_interrupts_the_job_ahead_and_stops_ours_when_it_starts(fake):
    fake.step_time = 0.25  # slow steps, so that "within a step" leaves room for a busy machine
    backend = make_backend(fake.url)
    other = OtherClient(fake, "a blue whale", steps=8)  # 2 s: room to cancel while queued
    wait_for(lambda: fake.current_task == other.task_id, what="the other job to start")
    request = make_request(backend, steps=30)  # 7.5 s if it were left to run

    def cancel_once_queued(event, control):
        if isinstance(event, Status):
            control.cancel()

    run = record(backend, request, on_event=cancel_once_queued)
    assert [type(e) for e in run.events] == [Started, Status]
    assert fake.job(other.task_id).ended is None  # we returned at once, not after the job ahead
    assert other.join()["images"]
    fake.wait_idle()
    other_job = fake.job(other.task_id)
    [ours] = [job for job in fake.jobs if job is not other_job]
    assert other_job.steps_done == 8 and not other_job.interrupted
    assert ours.interrupted and ours.steps_done <= 2  # stopped within a step of starting
    assert [i.current_task for i in fake.interrupts] == [ours.task_id]
    wait_for(lambda: backend.reaper.interrupted == [ours.task_id], what="the reaper's record")


def test_a_cancel_while_running_stops_our_job_within_a_step(fake):
    fake.step_time = 0.25
    backend = make_backend(fake.url)
    request = make_request(backend, steps=20)
    done_at_cancel = []

    def cancel_at_step_3(event, control):
        if isinstance(event, Step) and event.step >= 3 and not control.cancelled:
            done_at_cancel.append(fake.jobs[-1].steps_done)
            control.cancel()

    run = record(backend, request, on_event=cancel_at_step_3)
    assert fake.jobs[0].ended is None  # the generator returned before the server's job ended
    assert not run.of(Finished) and not run.of(Failed)
    fake.wait_idle()
    [job] = fake.jobs
    assert job.interrupted and job.steps_done <= done_at_cancel[0] + 2
    assert [i.current_task for i in fake.interrupts] == [job.task_id]


def test_finish_early_returns_the_servers_current_estimate(fake):
    fake.step_time = 0.1
    backend = make_backend(fake.url)
    request = make_request(backend, steps=30)

    def finish_at_step_4(event, control):
        if isinstance(event, Step) and event.step >= 4:
            control.finish_early()

    run = record(backend, request, on_event=finish_at_step_4)
    finished = run.last
    assert isinstance(finished, Finished) and finished.early
    [job] = fake.jobs
    assert job.interrupted and job.steps_done < 10
    # The image is the estimate at the step the server stopped at, not the finished picture.
    spec = spec_of(request)
    assert difference(finished.images[0], render(spec, 0, job.steps_done / 30)) == 0
    assert difference(finished.images[0], render(spec, 0, 1.0)) > 20


def test_a_run_near_its_end_is_left_to_finish_rather_than_interrupted(fake):
    """An interrupt arrives a little after the poll that saw our job running; one that could
    arrive after our job ended would stop whichever job the server started next."""
    backend = make_backend(fake.url)
    request = make_request(backend, steps=8)  # 0.32 s in all

    def cancel_at_the_last_step(event, control):
        if isinstance(event, Step) and event.step >= 7:
            control.cancel()

    record(backend, request, on_event=cancel_at_the_last_step)
    fake.wait_idle()
    assert not fake.interrupts and fake.jobs[0].steps_done == 8


def test_previews_of_another_size_are_scaled_to_the_size_started_announced(fake):
    fake.preview_scale = 1 / 8  # "Approx cheap": a latent-sized preview
    backend = make_backend(fake.url, options={"preview_max_side": 96})
    run = record(backend, make_request(backend, width=128, height=64, steps=10))
    started = run.events[0]
    assert started.preview_size == (96, 48)
    sizes = {s.preview.size for s in run.of(Step) if s.preview is not None}
    assert sizes == {(96, 48)}


def test_previews_can_be_turned_off_for_an_endpoint(fake):
    backend = make_backend(fake.url, options={"previews": False})
    assert backend.capabilities.step_previews is False
    run = record(backend, make_request(backend, steps=6))
    assert run.events[0].preview_size is None
    assert all(s.preview is None for s in run.of(Step)) and run.of(Step)[-1].step == 6
    # The server's own settings are left alone when previews are off, and restored otherwise.
    assert fake.opts["show_progress_every_n_steps"] == 10


def test_the_run_asks_for_a_preview_every_step_and_the_server_restores_its_settings(fake):
    fake.lockstep_polls = 2  # every step is seen by at least one whole poll
    backend = make_backend(fake.url)
    run = record(backend, make_request(backend, steps=10))
    # A preview at every step from the first (the server's own default, every 10 steps after
    # the first, gives none here).
    assert [s.step for s in run.of(Step) if s.preview is not None] == list(range(1, 11))
    assert fake.opts["show_progress_every_n_steps"] == 10
    assert fake.opts["live_previews_image_format"] == "png"


def test_stream_relays_the_queue_place_previews_and_final_images(fake):
    fake.lockstep_polls = 2  # the other job moves on only as we poll: we arrive while it runs
    backend = make_backend(fake.url)
    other = OtherClient(fake, "a blue whale", steps=25)
    wait_for(lambda: fake.current_task == other.task_id, what="the other job to start")
    states = list(stream(backend, prompt="a red fox", steps=8, width=64, height=64, seed=3))
    queued = [s for s in states if s.phase == "queued"]
    assert queued and queued[0].queue_position == 1 and queued[0].queue_size == 1
    assert any(s.preview and s.preview.startswith("data:image/") for s in states)
    last = states[-1]
    assert last.status == "done" and last.step == 8 and len(last.images) == 1
    other.join()


def test_a_cancel_right_after_started_stops_our_job_as_soon_as_it_runs(fake):
    fake.step_time = 0.25
    backend = make_backend(fake.url)

    def cancel_at_once(event, control):
        control.cancel()

    run = record(backend, make_request(backend, steps=30), on_event=cancel_at_once)
    assert [type(e) for e in run.events] == [Started]
    wait_for(lambda: fake.jobs and fake.jobs[0].ended, what="our job to end")
    [job] = fake.jobs
    assert job.interrupted and job.steps_done <= 2


def test_each_run_names_its_checkpoint_and_the_servers_loaded_one_stays(fake):
    """Models are the server's checkpoints; a run on another one switches for that run only
    (override_settings), so the next run on the default is not moved off it."""
    backend = make_backend(fake.url)
    assert [m.id for m in backend.list_models()] == ["v1-5-pruned-emaonly", "anime_counterfeit-v3"]
    loaded = fake.opts["sd_model_checkpoint"]
    anime = make_request(backend, model="anime_counterfeit-v3")
    run = record(backend, anime)
    assert isinstance(run.last, Finished) and run.last.metadata["model"] == "counterfeit-v3"
    assert difference(run.last.images[0], render(spec_of(anime), 0, 1.0)) == 0
    assert fake.opts["sd_model_checkpoint"] == loaded  # restored afterwards
    default = make_request(backend)
    assert default.model == "v1-5-pruned-emaonly"
    assert isinstance(record(backend, default).last, Finished)
    assert [job.checkpoint for job in fake.jobs] == ["anime_counterfeit-v3", "v1-5-pruned-emaonly"]
