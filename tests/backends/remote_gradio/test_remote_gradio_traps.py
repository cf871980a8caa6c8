"""gradio_client's traps around cancel and idle connections, against real Gradio apps on
loopback: a cancelled run returns at once even when the remote ignores the cancel (and the
client gives up on it after ``STOP_WAIT_SECONDS``), the odd errors a cancelled job raises stay
quiet, and the event stream outlives Gradio's 15-second heartbeat.

The other traps are tested beside the features they guard: the local token
(test_remote_gradio.py), previews kept as data URLs with no file written
(test_remote_gradio.py, and the conformance kit's no_files check against a remote in another
process), a remote killed mid-run and a Gradio 7 remote (test_remote_gradio_failures.py).
"""

from __future__ import annotations

import threading
import time

import gradio as gr
import httpx
import pytest
from remote_gradio_apps import hanging_app, preview_app, red_image
from remote_gradio_client import gradio_backend
from toy_backends import CountingBackend

from gradio_diffusion_preview import Failed, Finished, RunControl, Started, Step
from gradio_diffusion_preview.backends.remote_gradio import run as run_module
from gradio_diffusion_preview.backends.remote_gradio.settings import HEARTBEAT_SECONDS
from gradio_diffusion_preview.request import build_request, validate_request
from gradio_diffusion_preview.testing import run_backend

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


def stop_threads_end(within: float) -> bool:
    """Whether every thread stopping a remote run has ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name == "gdp-gradio-stop"]:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def thread_errors(monkeypatch) -> list[BaseException]:
    """Exceptions that escape any thread during the test."""
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def test_a_cancel_returns_at_once_even_when_the_remote_ignores_it(
    serve, monkeypatch, thread_errors
):
    """The run returns before the remote answers: cancelled once the remote holds the job,
    which it holds until released, and it is released only after the run returned."""
    monkeypatch.setattr(run_module, "STOP_WAIT_SECONDS", 1.0)
    release, entered, answered = threading.Event(), threading.Event(), threading.Event()
    backend = gradio_backend(serve(hanging_app(release, entered, answered)), timeout=60)
    request = validate_request(build_request(backend, {"prompt": "fox"}), backend)
    control = RunControl()
    events = []
    for event in backend.generate(request, control):
        events.append(event)
        if isinstance(event, Started):
            assert entered.wait(30)
            control.cancel()
    answered_before_return = answered.is_set()
    release.set()
    assert [type(e) for e in events] == [Started], events
    assert not answered_before_return  # it did not wait for the remote's answer
    # Closed while the released job is still winding up, the server waited 5 s for it
    # (uvicorn's graceful shutdown under Gradio's 5 s join); once answered, it closes at once.
    assert answered.wait(30)
    # the stopping thread waits for the remote's answer no longer than STOP_WAIT_SECONDS
    assert stop_threads_end(within=10)
    assert thread_errors == []


def test_the_odd_errors_of_a_cancelled_job_stay_quiet_and_its_client_is_reused(
    serve, monkeypatch, thread_errors
):
    jobs = []
    stop_soon = run_module._stop_soon
    monkeypatch.setattr(
        run_module, "_stop_soon", lambda *args: (jobs.append(args[2]), stop_soon(*args))
    )
    backend = gradio_backend(serve(preview_app(CountingBackend(step_seconds=0.3))))
    session = backend.session()
    (client,) = session._idle
    request = validate_request(build_request(backend, {"prompt": "fox", "steps": 30}), backend)
    control = RunControl()
    events = []
    for event in backend.generate(request, control):
        events.append(event)
        if isinstance(event, Step) and event.step == 2:
            control.cancel()
    assert not [e for e in events if isinstance(e, Finished | Failed)], events
    assert stop_threads_end(within=15)
    (job,) = jobs
    with pytest.raises(Exception) as raised:  # noqa: PT011 (its type is the trap)
        job.result(timeout=0)
    assert raised.type.__name__ not in ("AppError", "RemoteFailure"), raised.value
    assert thread_errors == []  # nothing escaped from the stopping threads
    assert session._idle == [client]  # the cancel was done: the client serves the next run
    rec = run_backend(backend, steps=2)
    assert rec.finished is not None, rec.trace()


def test_the_client_reads_with_a_timeout_above_the_heartbeat(serve):
    backend = gradio_backend(serve(preview_app(CountingBackend())))
    (client,) = backend.session()._idle
    timeout = client.httpx_kwargs["timeout"]
    assert isinstance(timeout, httpx.Timeout)
    assert timeout.read == 60.0 > HEARTBEAT_SECONDS  # the default read_timeout
    assert timeout.connect == backend.endpoint.connect_timeout


@pytest.mark.slow
def test_a_remote_silent_for_longer_than_the_read_timeout_is_kept_alive_by_its_heartbeat(
    serve, monkeypatch
):
    """Gradio writes a heartbeat to an idle event stream every 15 s (HEARTBEAT_SECONDS, its
    default, checked here), so a read timeout above it never fires on a silent remote. The
    run is the same on a shorter clock (at 15 s it took 17 s): the remote's heartbeat every
    0.5 s (Gradio's GRADIO_HEARTBEAT_INTERVAL, read by the app served in this process), the
    client's read timeout 2 s, the handler silent for 4 s. Were the heartbeat not reaching
    the stream, the read would time out and the run fail."""
    from gradio.utils import get_heartbeat_rate

    monkeypatch.delenv("GRADIO_IS_E2E_TEST", raising=False)
    monkeypatch.delenv("GRADIO_HEARTBEAT_INTERVAL", raising=False)
    assert get_heartbeat_rate() == HEARTBEAT_SECONDS
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")

    def quiet(prompt: str):
        time.sleep(4)
        return red_image()

    with gr.Blocks() as app:
        gr.Button().click(quiet, gr.Textbox(label="Prompt"), gr.Image(), api_name="quiet")
    backend = gradio_backend(serve(app), heartbeat_seconds=0.5, read_timeout=2.0)
    rec = run_backend(backend, timeout=60)
    assert rec.finished is not None, rec.trace()
