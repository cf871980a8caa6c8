"""Stop and the run's deadline reach huggingface_hub's own image downloads and polls (the
provider helpers' requests on its shared client, in a library thread), on the replayed
services (tests/support/hf_replay.py): a stopped run sends no further poll and reads no
further chunk of an image; a call past its deadline sends nothing more; outside our runs the
client is left as it was, and an app's own client factory is chained to, not replaced.

Judged by counts and order only: the replay's answers are gated by events, and a wait on an
event is a safety net (it fails the test), never the measure."""

from __future__ import annotations

import threading

import pytest
from hf_replay import DELIVERY, ROUTER, SCHNELL, json_answer, recorded_png, replay

from gradio_diffusion_preview import RunControl, Started, Status, validate_request
from gradio_diffusion_preview.backends.hf_inference import bounded
from gradio_diffusion_preview.backends.hf_inference.backend import HfInferenceBackend
from gradio_diffusion_preview.backends.hf_inference.call import CallSpec, InferenceCall
from gradio_diffusion_preview.backends.hf_inference.failures import Where, classify
from gradio_diffusion_preview.backends.hf_inference.settings import HfModel
from gradio_diffusion_preview.request import build_request

SAFETY = 60.0
"""How long a gated step may take before the test fails (a hang, not a measure)."""
REPLICATE_IMAGE = "https://replicate.delivery/"
WAVESPEED_POLL = f"{ROUTER}/wavespeed/api/v3/predictions/w1/result"
IMAGE = DELIVERY.split("?")[0]


@pytest.fixture
def served(monkeypatch):
    yield from replay(monkeypatch)


def call_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gdp-hf-inference-call")]


class Background:
    """``generate`` on a thread, as the server runs it, with its own ``RunControl``."""

    def __init__(self, provider: str) -> None:
        backend = HfInferenceBackend(provider=provider, models=[HfModel(id=SCHNELL)])
        request = validate_request(
            build_request(backend, {"prompt": "a fox", "model": SCHNELL}), backend
        )
        self.control = RunControl()
        self.events: list = []
        generator = backend.generate(request, self.control)
        self.thread = threading.Thread(target=lambda: self.events.extend(generator), daemon=True)
        self.thread.start()

    def stop(self) -> list[threading.Thread]:
        """Stop, wait for the run to end; the call threads still alive then."""
        calls = call_threads()
        self.control.cancel()
        self.thread.join(SAFETY)
        assert not self.thread.is_alive(), "the run did not end on Stop"
        assert [type(e) for e in self.events] == [Started, Status], self.events
        return calls


class GatedBody:
    """An image body in ``parts`` chunks; the second chunk is held until ``gate`` opens (a read
    in flight). ``pulled`` counts the chunks read, ``closed`` says the response was closed."""

    def __init__(self, content: bytes, parts: int = 4) -> None:
        size = -(-len(content) // parts)
        self.chunks = [content[i : i + size] for i in range(0, len(content), size)]
        self.waiting, self.gate = threading.Event(), threading.Event()
        self.pulled, self.closed = 0, False

    def answer(self, request):
        import httpx2

        body = self

        class Stream(httpx2.SyncByteStream):
            def __iter__(self):
                for index, chunk in enumerate(body.chunks):
                    if index == 1:
                        body.waiting.set()
                        assert body.gate.wait(SAFETY)
                    body.pulled += 1
                    yield chunk

            def close(self) -> None:
                body.closed = True

        return httpx2.Response(200, stream=Stream(), headers={"content-type": "image/png"})


def image_url(served) -> str:
    return next(url for method, url in served.routes if url.startswith(REPLICATE_IMAGE))


def test_stop_mid_download_reads_no_further_chunk(served):
    body = GatedBody(recorded_png())
    served.answer("GET", image_url(served), body.answer)
    run = Background("replicate")
    assert body.waiting.wait(SAFETY), served.requests
    calls = run.stop()
    body.gate.set()  # the chunk in flight at Stop arrives now
    for thread in calls:
        thread.join(SAFETY)
        assert not thread.is_alive(), "the download went on after Stop"
    assert body.pulled == 2, "chunks read after Stop: only the one in flight may end"
    assert body.closed and len(body.chunks) == 4
    assert [method for method, url, _ in served.requests if is_provider_call(url)] == [
        "POST",
        "GET",
    ], served.requests


def is_provider_call(url: str) -> bool:
    """A request to the provider (the run's own), not the Hub's model API: the run reads its
    model's info there, and a model listing another test's backend started in the background
    can land while this test intercepts the process's requests (seen under pytest-xdist: a
    listing from a loopback fake Hub of an earlier test)."""
    return not url.startswith("https://huggingface.co") and "/api/models" not in url


def test_stop_mid_poll_sends_no_further_poll_and_no_image_request(served, monkeypatch):
    from huggingface_hub.inference._providers import wavespeed

    monkeypatch.setattr(wavespeed, "_POLLING_INTERVAL", 0.0)
    polled, gate = threading.Event(), threading.Event()
    polls: list[int] = []

    def poll(request):
        polls.append(len(polls) + 1)
        if len(polls) == 1:
            polled.set()
            assert gate.wait(SAFETY)
        if len(polls) < 4:
            return json_answer({"code": 200, "data": {"status": "processing"}})(request)
        return json_answer({"code": 200, "data": {"status": "completed", "outputs": [DELIVERY]}})(
            request
        )

    served.answer("GET", WAVESPEED_POLL, poll)
    run = Background("wavespeed")
    assert polled.wait(SAFETY), served.requests
    calls = run.stop()
    gate.set()  # the poll in flight at Stop answers "processing" now
    for thread in calls:
        thread.join(SAFETY)
        assert not thread.is_alive(), "the polling went on after Stop"
    assert polls == [1], "polls sent after Stop"
    assert not [url for method, url, _ in served.requests if url == IMAGE]


class Clock:
    """A clock the replay moves: our deadline on it, never on the machine's."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_past_the_deadline_the_client_sends_no_poll_and_the_run_calls_it_a_timeout(served):
    clock = Clock()
    post = served.routes[("POST", f"{ROUTER}/wavespeed/api/v3/wavespeed-ai/flux-schnell")]

    def slow_post(request):  # the provider answers 100 s later, past the 10 s deadline
        clock.now += 100.0
        return post(request)

    served.answer("POST", f"{ROUTER}/wavespeed/api/v3/wavespeed-ai/flux-schnell", slow_post)
    spec = CallSpec(model=SCHNELL, provider="wavespeed", arguments={"prompt": "a fox"})
    call = InferenceCall(spec, None, timeout=10.0, clock=clock).start()
    assert call.finished.wait(SAFETY)
    assert isinstance(call.error, bounded.DeadlinePassed), call.error
    assert [m for m, url, _ in served.requests if url.startswith(ROUTER)] == ["POST"]
    failed = classify(call.error, Where(SCHNELL, "provider wavespeed"), 0.0)
    assert failed.reason == "timeout", failed


def test_inside_a_call_each_request_waits_at_most_the_time_left(served):
    clock = Clock()
    spec = CallSpec(model=SCHNELL, provider="replicate", arguments={"prompt": "a fox"})
    call = InferenceCall(spec, None, timeout=10.0, clock=clock).start()
    assert call.finished.wait(SAFETY)
    assert call.error is None and call.image is not None, call.error
    # The replay's own client has no timeout: every request (the Hub's mapping, the POST on
    # the async client, the image download on the shared one) waits at most the time left.
    assert served.requests[-1][1] == image_url(served)
    assert served.timeouts == [dict.fromkeys(("connect", "read", "write", "pool"), 10.0)] * 3, (
        served.requests,
        served.timeouts,
    )


def test_outside_a_call_the_shared_client_is_as_the_app_made_it(served):
    """After a call, huggingface_hub's own requests (a download of the app's) are not bounded,
    and the factory wraps the replay's own (an app's) rather than replacing it."""
    from huggingface_hub.utils import _http

    app_factory = _http._GLOBAL_CLIENT_FACTORY
    spec = CallSpec(model=SCHNELL, provider="replicate", arguments={"prompt": "a fox"})
    call = InferenceCall(spec, None, timeout=10.0).start()
    assert call.finished.wait(SAFETY) and call.error is None, call.error
    factory = _http._GLOBAL_CLIENT_FACTORY
    assert isinstance(factory, bounded.BoundedFactory) and factory.inner is app_factory
    response = _http.get_session().get(IMAGE)
    assert response.content == recorded_png()
    assert set(response.request.extensions["timeout"].values()) == {None}
    assert bounded.install() and _http._GLOBAL_CLIENT_FACTORY is factory, "wrapped once"


def test_a_huggingface_hub_without_a_readable_factory_is_left_alone(monkeypatch):
    from huggingface_hub.utils import _http

    monkeypatch.delattr(_http, "_GLOBAL_CLIENT_FACTORY")
    assert bounded.install() is False
    assert not hasattr(_http, "_GLOBAL_CLIENT_FACTORY")
