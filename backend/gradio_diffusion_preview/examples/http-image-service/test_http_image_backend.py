"""The example HTTP backend's tests: the conformance kit against the image service, started
on a free loopback port by a fixture and stopped after, and the service's failures as the
run's reason (what a caller acts on)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from http_image_backend import HttpImageBackend
from image_service import ImageService

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.testing import BackendConformanceTests

REQUEST = {"prompt": "a lighthouse in a storm", "steps": 4, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def image_service() -> Iterator[ImageService]:
    """The service on loopback; port 0 lets the OS pick a free port. Stopped after the tests."""
    service = ImageService(("127.0.0.1", 0), seconds=0.05)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    yield service
    service.shutdown()  # stops serve_forever
    service.server_close()  # frees the port
    thread.join(timeout=5)


@pytest.fixture
def service(image_service: ImageService) -> Iterator[ImageService]:
    """The same service, for a test that changes how it answers: reset after the test."""
    yield image_service
    image_service.outage, image_service.token = None, None


class TestHttpImageConformance(BackendConformanceTests):
    request = REQUEST
    # Passes validation, but the service's content filter refuses it.
    failing_request = {"prompt": "a forbidden subject"}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _backend(cls, image_service: ImageService) -> None:
        cls.backend = HttpImageBackend(image_service.url)


class TestTurboConformance(TestHttpImageConformance):
    # The turbo model allows 1 to 4 steps; given no steps, the kit keeps within them.
    request = {"prompt": "a red fox", "width": 64, "height": 64, "model": "sketch-turbo"}


def last_state(backend: HttpImageBackend, **fields):
    return list(stream(backend, **{**REQUEST, **fields}))[-1]


@pytest.mark.parametrize(
    ("outage", "reason"), [((429, 7), "rate_limited"), ((503, 30), "unavailable")]
)
def test_an_outage_is_a_reason_with_a_retry_after(service, outage, reason):
    service.outage = outage
    state = last_state(HttpImageBackend(service.url))
    assert (state.status, state.reason, state.retry_after) == ("error", reason, outage[1])
    assert f"The image service answered {outage[0]}: Try again later." in state.message


def test_a_wrong_token_is_unauthorized_and_never_shown(service):
    service.token = "s3cret-token"
    state = last_state(HttpImageBackend(service.url, token="wrong-token"))
    assert (state.status, state.reason) == ("error", "unauthorized")
    assert "token" in state.message and "wrong-token" not in state.message
    assert last_state(HttpImageBackend(service.url, token="s3cret-token")).status == "done"


def test_a_models_own_limits_are_enforced_before_the_service_is_asked(service):
    state = last_state(HttpImageBackend(service.url), model="sketch-turbo", steps=8)
    assert (state.status, state.reason) == ("error", "invalid_request")
    assert "steps must be from 1 to 4 for model 'sketch-turbo'" in state.message


def test_an_unreachable_or_unconfigured_service_is_unavailable(image_service, monkeypatch):
    monkeypatch.delenv("EXAMPLE_IMAGE_SERVICE_URL", raising=False)
    state = last_state(HttpImageBackend())
    assert (state.status, state.reason) == ("error", "unavailable")
    assert "Set EXAMPLE_IMAGE_SERVICE_URL" in state.message
    closed = ImageService(("127.0.0.1", 0))
    url = closed.url
    closed.server_close()  # nothing listens there now
    state = last_state(HttpImageBackend(url))
    assert (state.status, state.reason) == ("error", "unavailable")
    assert "could not list its models" in state.message and "Cannot reach" in state.message
