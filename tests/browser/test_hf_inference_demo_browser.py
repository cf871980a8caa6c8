"""The demo's own Hugging Face entries in Chromium, as a visitor reaches them on a server with
only HF_TOKEN set: huggingface_hub's real provider code answered by the recorded traffic
(tests/support/hf_replay.py), "auto" routing to fal-ai. FLUX.1 [schnell] and SDXL finish from
the Generate tab (the hidden guidance slider must not be sent), FLUX.1 [schnell] finishes in a
Compare panel beside the bundled model, and both finish through gradio_client."""

from __future__ import annotations

import pytest
from browser_helpers import TIMEOUT_MS
from hf_replay import SCHNELL, SDXL, replay
from playwright.sync_api import expect
from testenv import load_demo_module

from gradio_diffusion_preview.plugins import reset_registry

pytestmark = pytest.mark.browser

LABELS = {
    "flux-schnell": "FLUX.1 [schnell] (Hugging Face Inference)",
    "sdxl": "Stable Diffusion XL (Hugging Face Inference)",
}


@pytest.fixture(scope="module")
def demo_served(serve_module):
    """The demo with the registry's own hf-inference backend (HF_TOKEN only, provider auto)
    and huggingface_hub's HTTP answered by the replay: served once for the module's tests."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for served in replay(monkeypatch):
            monkeypatch.setenv("DIFFUSION_PREVIEW_HF_MODELS", f"{SCHNELL},{SDXL}")
            reset_registry()
            try:
                yield serve_module(load_demo_module().build_demo()), served
            finally:
                reset_registry()


@pytest.fixture
def demo_with_replay(demo_served):
    """The module's demo and replay, as new for each test: no request recorded yet, and
    huggingface_hub's provider-mapping cache empty."""
    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

    url, served = demo_served
    for recorded in (served.requests, served.bodies, served.timeouts):
        recorded.clear()
    _fetch_inference_provider_mapping.cache_clear()
    return url, served


def choose_model(page, label: str) -> None:
    page.get_by_label("Model", exact=True).click()
    page.get_by_role("option", name=label, exact=True).click()


@pytest.mark.parametrize("entry", ["flux-schnell", "sdxl"])
def test_the_generate_tab_finishes_a_hugging_face_entry(open_page, demo_with_replay, entry):
    url, served = demo_with_replay
    page = open_page(url)
    choose_model(page, LABELS[entry])  # one Model list of every entry; the backend follows
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_have_count(0)
    assert served.provider_calls() == ["fal-ai"]
    assert not page.errors


def test_a_model_chosen_just_before_generate_is_the_one_that_runs(open_page, demo_with_replay):
    """The model list tells the page's hidden backend box by a round trip to the server; a
    click on Generate before its answer arrives (a busy server, a slow connection) still runs
    the chosen model. Its answers are held here until the run has finished."""
    url, served = demo_with_replay
    page = open_page(url)
    held = []

    def hold_the_models_answer(route):
        if "flux-schnell" in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/run/**", hold_the_models_answer)
    choose_model(page, LABELS["flux-schnell"])
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held  # the model list's answers (its settings, the hint under the prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_have_count(0)
    assert served.provider_calls() == ["fal-ai"]
    for route in held:
        route.continue_()
    assert not page.errors


def test_flux_schnell_finishes_in_a_compare_panel_beside_the_bundled_model(
    open_page, demo_with_replay
):
    url, served = demo_with_replay
    page = open_page(url, width=1200)
    page.get_by_role("tab", name="Compare", exact=True).click()
    root = page.locator(".diffusion-compare")
    root.get_by_role("button", name="Compare", exact=True).wait_for(timeout=TIMEOUT_MS)
    for label in ("Bundled shapes · DPM-Solver++", "Bundled shapes · UniPC"):
        root.get_by_label(label, exact=True).uncheck()
    root.get_by_label(LABELS["flux-schnell"], exact=True).check()
    panels = root.get_by_test_id("diffusion-preview")
    expect(panels.filter(visible=True)).to_have_count(2, timeout=TIMEOUT_MS)
    flux = panels.nth(1)
    # the panels follow the last of the three changes before Compare: its answer, arriving
    # after the run, would clear the panels again (two visible panels come with the first one)
    block = flux.locator("xpath=ancestor::*[contains(@class, 'block')][1]")
    expect(block).to_contain_text(LABELS["flux-schnell"], timeout=TIMEOUT_MS)
    # and the size sliders follow it too (their answer is another event's): FLUX.1 [schnell]
    # takes no less than 256 px, and the bundled model's 64 would fail its panel
    root.get_by_text("Advanced settings").click()  # the sliders are drawn once it opens
    width = root.locator('input[aria-label="number input for Width"]')
    expect(width).to_have_value("256", timeout=TIMEOUT_MS)
    root.get_by_role("button", name="Compare", exact=True).click()
    expect(flux).to_have_attribute("data-view", "done", timeout=TIMEOUT_MS)
    flux.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert served.provider_calls() == ["fal-ai"]
    assert not page.errors


@pytest.mark.parametrize("entry", ["flux-schnell", "sdxl"])
def test_gradio_client_finishes_a_hugging_face_entry(demo_with_replay, entry):
    from gradio_client import Client

    url, served = demo_with_replay
    client = Client(url, verbose=False)
    result = client.predict(
        "hf-inference", entry, "a fox", "", 4, 3.5, -1, 512, 512, 1, "{}", api_name="/generate"
    )
    assert result["status"] == "done", result
    assert served.provider_calls() == ["fal-ai"]
