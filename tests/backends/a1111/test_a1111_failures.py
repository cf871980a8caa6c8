"""Every way a run on an AUTOMATIC1111 server can fail ends it with one Failed event whose
reason fits and whose message names the endpoint and the fix; the next run works."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fake_a1111 import FakeA1111, make_backend, make_request, post_txt2img, record
from testenv import free_port
from waiting import wait_for

from gradio_diffusion_preview import Failed, Finished, InvalidRequest, Started, Step, stream
from gradio_diffusion_preview.backend import ModelListingError

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    server = FakeA1111(step_time=0.02)
    server.start()
    yield server
    server.stop()


def failure_of(run) -> Failed:
    assert isinstance(run.last, Failed), run.events
    assert not run.of(Finished)
    return run.last


def next_run_works(backend, fake=None, **fields) -> None:
    """After a failure the backend, and the server, run the next request normally."""
    if fake is not None:
        fake.wait_idle()
    run = record(backend, make_request(backend, **fields))
    assert isinstance(run.last, Finished), run.events
    assert run.of(Step)[-1].step == run.events[0].total_steps


def test_an_unreachable_server_is_unavailable_in_listing_and_in_a_run():
    url = f"http://127.0.0.1:{free_port()}"
    backend = make_backend(url, connect_timeout=2)
    with pytest.raises(ModelListingError, match="Cannot reach 'studio'"):
        backend.list_models()
    [state] = list(stream(backend, prompt="a fox"))
    assert state.status == "error" and state.reason == "unavailable"
    assert "--api" in state.message and "DIFFUSION_PREVIEW_A1111_URL" in state.message
    # With its models configured the listing needs no server; the run itself says it.
    configured = make_backend(url, models=["v1-5-pruned-emaonly"])
    failed = failure_of(record(configured, make_request(configured)))
    assert failed.reason == "unavailable" and "Cannot reach" in failed.message

    server = FakeA1111(step_time=0.01)  # the server comes up on that port: the next run works
    server.start_on(int(url.rsplit(":", 1)[1]))
    try:
        next_run_works(configured, server)
    finally:
        server.stop()


def test_credentials_refused_are_unauthorized_with_how_to_set_them(fake):
    fake.auth = ("ann", "s3cret-canary")
    models = ["v1-5-pruned-emaonly"]  # so that validation lists no models from the server
    without = make_backend(fake.url, models=models)
    failed = failure_of(record(without, make_request(without)))
    assert failed.reason == "unauthorized"
    assert "--api-auth" in failed.message and "DIFFUSION_PREVIEW_A1111_USER" in failed.message
    wrong = make_backend(fake.url, models=models, username="ann", password="wrong-canary")
    failed = failure_of(record(wrong, make_request(wrong)))
    assert failed.reason == "unauthorized" and "Incorrect username or password" in failed.message
    assert "canary" not in failed.message
    listing = make_backend(fake.url, username="ann", password="wrong-canary")
    with pytest.raises(ModelListingError, match="refused our credentials") as error:
        listing.list_models()
    assert "canary" not in str(error.value)
    right = make_backend(fake.url, username="ann", password="s3cret-canary")
    next_run_works(right, fake)
    # /internal/progress is not behind --api-auth; the run used it all the same.
    assert ("POST", "/internal/progress") in fake.requests


def test_a_token_goes_as_a_bearer_header_to_a_proxy_in_front_and_never_into_messages(fake):
    """A server behind an authenticating reverse proxy: the endpoint's token (and only the
    endpoint's: the process environment's proxies and credentials are not used) goes as a
    bearer token with every call; a refusal says so without the token."""
    backend = make_backend(fake.url, token="tok-canary")
    next_run_works(backend, fake)
    assert fake.authorizations == {"Bearer tok-canary"}
    fake.auth = ("ann", "s3cret")  # now the server itself wants a password
    failed = failure_of(record(backend, make_request(backend)))
    assert failed.reason == "unauthorized" and "canary" not in failed.message


def test_a_server_without_api_says_to_start_it_with_api(fake):
    fake.api = False
    backend = make_backend(fake.url, models=["v1-5-pruned-emaonly"])
    failed = failure_of(record(backend, make_request(backend)))
    assert failed.reason == "unavailable" and "--api" in failed.message


@pytest.mark.parametrize(
    ("error", "reason", "says"),
    [
        ((500, "RuntimeError", "VAE decode failed"), "remote_error", "RuntimeError: VAE decode"),
        (
            (500, "OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB"),
            "out_of_memory",
            "CUDA out of memory",
        ),
    ],
)
def test_the_servers_own_error_is_reported_with_its_message(fake, error, reason, says):
    backend = make_backend(fake.url)
    fake.faults.txt2img_error = error
    failed = failure_of(record(backend, make_request(backend)))
    assert failed.reason == reason and says in failed.message and "'studio'" in failed.message
    next_run_works(backend, fake)


def test_a_checkpoint_the_server_does_not_have_is_model_not_found_before_any_work(fake):
    backend = make_backend(fake.url, models=["v1-5-pruned-emaonly", "no-such-model"])
    failed = failure_of(record(backend, make_request(backend, model="no-such-model")))
    assert failed.reason == "model_not_found"
    assert "no checkpoint 'no-such-model'" in failed.message
    assert "v1-5-pruned-emaonly" in failed.message  # what to choose instead
    assert ("POST", "/sdapi/v1/txt2img") not in fake.requests
    next_run_works(backend, fake, model="v1-5-pruned-emaonly")


@pytest.mark.parametrize("flavor", ["a1111", "forge"])
def test_a_checkpoint_removed_since_the_listing_is_model_not_found(fake, flavor):
    """Forge refuses an unknown checkpoint override (a 500 RuntimeError); AUTOMATIC1111 drops it
    and quietly runs the loaded checkpoint, which the answer's sd_model_name gives away."""
    fake.flavor = flavor
    backend = make_backend(fake.url)
    assert [m.id for m in backend.list_models()][1] == "anime_counterfeit-v3"
    fake.checkpoints = fake.checkpoints[:1]  # deleted on the server
    failed = failure_of(record(backend, make_request(backend, model="anime_counterfeit-v3")))
    assert failed.reason == "model_not_found"
    assert "counterfeit" in failed.message
    next_run_works(backend, fake, model="v1-5-pruned-emaonly")


def test_a_server_stalled_past_the_deadline_times_out_and_its_job_is_stopped(fake):
    fake.step_time = 0.3  # 9 s for 30 steps
    backend = make_backend(fake.url, timeout=1.0)
    started = time.monotonic()
    failed = failure_of(record(backend, make_request(backend, steps=30)))
    took = time.monotonic() - started
    assert failed.reason == "timeout" and "within 1 s" in failed.message
    assert "while generating" in failed.message and took >= 1.0  # our clock, never earlier
    fake.wait_idle(timeout=5)  # the reaper interrupted our job: the server is free again
    assert fake.jobs[0].interrupted and fake.jobs[0].steps_done < 8
    fake.step_time = 0.02
    next_run_works(backend, fake)


def test_a_server_that_takes_the_connection_but_never_answers_times_out():
    """A hung server (or a proxy holding the line): the kernel accepts the connection, nothing
    ever answers. The run ends on our own clock, whatever the socket does."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # never accepted: connects succeed, reads wait forever
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        listing = make_backend(url, timeout=1.0)
        with pytest.raises(ModelListingError, match="did not answer /sdapi/v1/sd-models in time"):
            listing.list_models()  # the listing too waits no longer than the endpoint's timeout
        backend = make_backend(url, models=["v1-5-pruned-emaonly"], timeout=1.0)
        started = time.monotonic()
        failed = failure_of(record(backend, make_request(backend)))
        assert time.monotonic() - started >= 1.0  # our deadline, not an early give-up
    assert failed.reason == "timeout" and "within the endpoint's timeout (1 s)" in failed.message
    assert "'studio'" in failed.message


def test_a_run_timing_out_in_the_queue_leaves_the_job_ahead_alone(fake):
    fake.step_time = 0.25  # the job ahead takes 2 s, well past our 0.5 s on a busy machine
    ahead = threading.Thread(
        target=post_txt2img,
        args=(fake.url, {"prompt": "x", "steps": 8, "width": 64, "height": 64}),
        daemon=True,
    )
    ahead.start()
    wait_for(lambda: fake.current_task is not None, what="the other job to start")
    backend = make_backend(fake.url, timeout=0.5)
    failed = failure_of(record(backend, make_request(backend, steps=20)))
    assert failed.reason == "timeout" and "while waiting in its queue" in failed.message
    ahead.join(10)
    fake.wait_idle()
    other, ours = fake.jobs
    assert other.steps_done == 8 and not other.interrupted
    assert ours.interrupted and ours.steps_done <= 2  # stopped within a step of starting
    fake.step_time = 0.02
    next_run_works(backend, fake)


def test_a_connection_dropped_mid_run_is_unavailable(fake):
    fake.step_time = 0.05
    fake.faults.drop_at_step = 4
    backend = make_backend(fake.url)
    run = record(backend, make_request(backend, steps=12))
    failed = failure_of(run)
    assert failed.reason == "unavailable" and "dropped" in failed.message
    assert run.of(Step)  # it had been running
    next_run_works(backend, fake)


def test_a_garbage_answer_is_a_remote_error(fake):
    fake.faults.garbage_answer = True
    backend = make_backend(fake.url)
    failed = failure_of(record(backend, make_request(backend)))
    assert failed.reason == "remote_error" and "not JSON" in failed.message
    assert "502 Bad Gateway" in failed.message  # what it said instead
    next_run_works(backend, fake)


@pytest.mark.parametrize("fault", ["progress_errors", "progress_garbage"])
def test_progress_polls_that_fail_now_and_then_do_not_fail_the_run(fake, fault):
    """#13225: /internal/progress can answer 500 when a value is NaN; the run goes on."""
    fake.step_time = 0.08
    setattr(fake.faults, fault, 4)
    backend = make_backend(fake.url)
    run = record(backend, make_request(backend, steps=12))
    assert isinstance(run.last, Finished)
    # Polling went on after the failures: a step from a poll came before the final one.
    assert [s.step for s in run.of(Step)][-1] == 12 and len(run.of(Step)) >= 2
    assert fake.faults.progress_errors == fake.faults.progress_garbage == 0  # all were used


def test_a_sampler_the_server_lacks_is_an_invalid_request_naming_its_samplers(fake):
    backend = make_backend(fake.url)
    failed = failure_of(record(backend, make_request(backend, options={"sampler": "Heun++"})))
    assert failed.reason == "invalid_request" and "no sampler 'Heun++'" in failed.message
    assert "Euler a" in failed.message
    run = record(backend, make_request(backend, options={"sampler": "k_euler_a"}))
    assert isinstance(run.last, Finished) and run.last.metadata["sampler"] == "Euler a"


def test_a_scheduler_is_checked_against_the_servers_list(fake):
    backend = make_backend(fake.url)
    failed = failure_of(record(backend, make_request(backend, options={"scheduler": "cosine"})))
    assert failed.reason == "invalid_request" and "karras" in failed.message
    run = record(backend, make_request(backend, options={"scheduler": "Karras"}))
    assert isinstance(run.last, Finished)


def test_an_option_of_the_wrong_type_is_refused_by_validation(fake):
    """A1111Options types the sampler as a name: the central validation refuses a number,
    naming the option, the value and what it takes, before the server is asked."""
    backend = make_backend(fake.url)
    with pytest.raises(InvalidRequest, match=r"options.sampler=3 .*GET /sdapi/v1/samplers"):
        make_request(backend, options={"sampler": 3})


def test_a_failed_stream_ends_with_the_error_state_and_the_next_run_works(fake):
    """The stream ends on the error state, which frees the app's queue slot."""
    fake.faults.txt2img_error = (500, "RuntimeError", "boom")
    backend = make_backend(fake.url)
    states = list(stream(backend, prompt="a fox", steps=4, width=64, height=64))
    assert states[-1].status == "error" and states[-1].reason == "remote_error"
    assert isinstance(record(backend, make_request(backend)).events[0], Started)
    next_run_works(backend, fake)
