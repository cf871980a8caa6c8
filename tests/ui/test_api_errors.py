"""A failed run ends an API call as an error carrying the run's message and reason: through
``gradio_client`` (``AppError``) and the REST API (an ``error`` event), the server serving the
next request. (The browser shows the same failure in place: test_browser_ux.)"""

from __future__ import annotations

import json

import httpx
import pytest
from browser_helpers import ToyBackend, backend_app
from gradio_client import Client
from gradio_client.exceptions import AppError
from toy_backends import WaitingBackend

from gradio_diffusion_preview import Failed, Status, stream

RATE_LIMITED = Failed("Too many requests. Fix: wait a little.", "rate_limited", retry_after=30)
EXPECTED = "Too many requests. Fix: wait a little. (reason: rate_limited, retry after 30 s)"


@pytest.fixture(scope="module")
def app_url(serve_module):
    failing = WaitingBackend(waits=[(Status("generating"), 0.01)], failure=RATE_LIMITED)
    return serve_module(backend_app(ToyBackend(), failing, width=64, height=64))


def run_args(backend: str, prompt: str = "a lighthouse") -> tuple:
    # prompt, negative prompt, backend, steps, seed, images
    return (prompt, "", backend, 2, 7, 1)


def test_a_failed_run_raises_app_error_with_its_message_and_reason(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError) as raised:
        client.predict(*run_args("waiting"), api_name="/run")
    assert raised.value.message == EXPECTED
    job = client.submit(*run_args("waiting"), api_name="/run")
    with pytest.raises(AppError, match=r"\(reason: rate_limited, retry after 30 s\)"):
        job.result(timeout=60)
    # The failed run's last state is still among the job's outputs, for those who want it.
    last = job.outputs()[-1]
    assert (last["status"], last["reason"], last["retry_after"]) == ("error", "rate_limited", 30)
    # A refused request is an error too, naming the field; the server serves the next run.
    with pytest.raises(AppError, match=r"prompt.*\(reason: invalid_request\)"):
        client.predict(*run_args("toy", prompt="   "), api_name="/run")
    done = client.predict(*run_args("toy"), api_name="/run")
    assert done["status"] == "done" and len(done["images"]) == 1


def test_the_rest_stream_ends_with_an_error_event_carrying_message_and_reason(app_url):
    with httpx.Client(base_url=app_url, timeout=60) as http:
        posted = http.post("/gradio_api/call/run", json={"data": list(run_args("waiting"))})
        assert posted.status_code == 200, posted.text
        url = f"/gradio_api/call/run/{posted.json()['event_id']}"
        events = []
        with http.stream("GET", url) as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((kind, line[5:].strip()))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error", kinds
    assert json.loads(events[-1][1])["error"] == EXPECTED
    states = [json.loads(data)[0] for kind, data in events if kind == "generating"]
    assert states[-1]["status"] == "error" and states[-1]["reason"] == "rate_limited"


def test_python_code_iterating_the_stream_gets_the_error_state_without_an_exception():
    failing = WaitingBackend(waits=[(Status("generating"), 0.01)], failure=RATE_LIMITED)
    last = list(stream(failing, prompt="a lighthouse", steps=2))[-1]
    assert (last.status, last.reason, last.retry_after) == ("error", "rate_limited", 30)
