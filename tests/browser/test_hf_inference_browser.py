"""The hf-inference backend's waiting and failing states in Chromium: a model loading at the
provider, a rate limit waited out, and one that fails with when to come back. The widget's
layout is another engineer's; these tests read text and the value's fields only."""

from __future__ import annotations

import pytest
from browser_helpers import TIMEOUT_MS
from fake_hf_router import image, inference_app, loading, rate_limited, serve_router
from playwright.sync_api import expect

from gradio_diffusion_preview.backends.hf_inference.backend import HfInferenceBackend
from gradio_diffusion_preview.backends.hf_inference.catalogue import catalogue_entry

pytestmark = pytest.mark.browser

SCHNELL = "black-forest-labs/FLUX.1-schnell"


@pytest.fixture
def router(monkeypatch):
    yield from serve_router(monkeypatch, {SCHNELL: ("hf-inference",)})


@pytest.fixture
def page(open_page, serve, router):
    backend = HfInferenceBackend(
        token=router.token, router_url=router.url, models=[catalogue_entry(SCHNELL)], max_wait=10
    )
    page = open_page(serve(inference_app(backend)))
    page.get_by_label("Model", exact=True).fill(SCHNELL)
    yield page
    assert not page.errors
    page.close()


def generate(page) -> None:
    page.get_by_role("button", name="Generate", exact=True).click()


def shown_state(page, state: str) -> None:
    """The "Last state" box has shown ``state`` (kept in the page, ``inference_app``): a wait
    of a few seconds can end before a loaded machine's test reads the box, which then showed
    the run done."""
    page.wait_for_function("(state) => (window.gdpStates || []).includes(state)", arg=state)


def test_a_loading_model_shows_its_estimate_then_the_image(page, router, output_dir):
    router.script(SCHNELL, loading(3.0), image())
    generate(page)
    status = page.get_by_test_id("status-message")
    expect(status).to_contain_text("Loading the model, about 3 s", timeout=TIMEOUT_MS)
    shown_state(page, "running loading null null")
    page.screenshot(path=output_dir / "loading.png", full_page=True)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_label("Last state")).to_have_value("done null null null")
    assert len(router.posts()) == 2


def test_a_rate_limit_is_waited_out_or_failed_with_when_to_retry(page, router, output_dir):
    router.script(SCHNELL, rate_limited(retry_after="4"), image())
    generate(page)
    status = page.get_by_test_id("status-message")
    expect(status).to_contain_text("rate-limited this app; trying again in 4 s", timeout=TIMEOUT_MS)
    shown_state(page, "running queued null null")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)

    router.script(SCHNELL, rate_limited(retry_after="3600"))
    generate(page)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("rate-limiting this app", timeout=TIMEOUT_MS)
    expect(alert).to_contain_text("try again in about 1 h")
    expect(page.get_by_label("Last state")).to_have_value("error null rate_limited 3600")
    page.screenshot(path=output_dir / "rate-limited.png", full_page=True)
