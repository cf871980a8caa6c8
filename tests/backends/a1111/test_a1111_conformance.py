"""The a1111 backend passes the conformance kit against the loopback AUTOMATIC1111 server."""

from __future__ import annotations

import pytest
from fake_a1111 import FakeA1111, make_backend

from gradio_diffusion_preview.testing import BackendConformanceTests, check_image_to_image_preview

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

# Steps long enough that a run stopped after step 2 still has well over the backend's safety
# margin to go, so that cancel and finish early interrupt it (see reaper.interrupt_if_running).
FAKE = FakeA1111(step_time=0.05)


@pytest.fixture(scope="module", autouse=True)
def fake_server():
    FAKE.start()
    yield FAKE
    FAKE.stop()


@pytest.fixture(autouse=True)
def idle_server(fake_server):
    """A cancelled run's job is stopped by the backend once it runs, a step or so later; the
    next check starts when it has gone, so that each check sees its own run from the start
    rather than one queued behind the last check's leftovers."""
    fake_server.wait_idle()


class TestA1111Conformance(BackendConformanceTests):
    request = {"prompt": "a red fox in the snow", "steps": 10, "width": 64, "height": 64}
    # Passes validation (sampler is a declared option) but the server has no such sampler.
    failing_request = {"options": {"sampler": "No Such Sampler"}}
    _backend = None

    def make_backend(self):
        if TestA1111Conformance._backend is None:
            TestA1111Conformance._backend = make_backend(FAKE.url)
        return TestA1111Conformance._backend

    def test_image_to_image_preview(self):
        """The kit's img2img preview check (not in the suite's class): the fake draws its
        steps from the input noised to the strength, so the first preview shows the input."""
        reason = check_image_to_image_preview(
            self.make_backend(), timeout=self.timeout, **self.request_fields()
        )
        assert reason is None, reason


class TestA1111BatchConformance(TestA1111Conformance):
    """A batch of two with the checkpoint the server has not loaded: the grid the server puts
    first is left out, and each run switches checkpoint through override_settings."""

    request = {
        **TestA1111Conformance.request,
        "num_images": 2,
        "model": "anime_counterfeit-v3",
        "options": {"sampler": "k_euler_a"},
    }


API_ONLY = FakeA1111(step_time=0.02, webui=False)


@pytest.fixture(scope="class")
def api_only_server():
    API_ONLY.start()
    yield API_ONLY
    API_ONLY.stop()


@pytest.mark.usefixtures("api_only_server")
class TestA1111ApiOnlyConformance(BackendConformanceTests):
    """A server started with --nowebui (no /internal/progress): the capabilities the listing
    finds (no steps, previews, Stop or finish early) are the ones the runs keep to."""

    request = TestA1111Conformance.request
    failing_request = TestA1111Conformance.failing_request
    _backend = None

    def make_backend(self):
        if TestA1111ApiOnlyConformance._backend is None:
            backend = make_backend(API_ONLY.url)
            backend.list_models()  # the listing finds out that there is no progress API
            assert backend.capabilities.step_events is False
            TestA1111ApiOnlyConformance._backend = backend
        return TestA1111ApiOnlyConformance._backend
