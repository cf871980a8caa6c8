"""The demo's Edit tab in Chromium (issue 27): a visitor uploads a picture, the edit forms step by
step (previews), Stop ends a run, and a finished edit's PNG records its `Denoising strength`.
(The input as the first frame and the before/after view: test_browser_edit_view.py.)"""

from __future__ import annotations

import io

import PIL.Image
import pytest
from browser_helpers import TIMEOUT_MS, set_number
from playwright.sync_api import expect
from step_counter import StepHold

from gradio_diffusion_preview.plugins import get_backend

pytestmark = pytest.mark.browser


def edit_tab(page):
    """The Edit tab's own parts (the Generate tab has a prompt, a button and a preview too)."""
    page.get_by_role("tab", name="Edit", exact=True).click()
    tab = page.locator(".diffusion-generate").filter(has=page.locator(".diffusion-input-image"))
    expect(tab).to_be_visible()
    return tab


def view_is(tab, view: str) -> None:
    expect(tab.get_by_test_id("diffusion-preview")).to_have_attribute(
        "data-view", view, timeout=TIMEOUT_MS
    )


def test_an_uploaded_picture_is_edited_step_by_step_stopped_and_finished(
    open_page, demo_url, tmp_path
):
    picture = tmp_path / "square.png"
    square = PIL.Image.new("RGB", (64, 64), "white")
    square.paste((30, 160, 40), (16, 16, 48, 48))
    square.save(picture)
    page = open_page(demo_url)
    tab = edit_tab(page)
    strength = tab.get_by_role("spinbutton", name="number input for Strength", exact=True)
    expect(strength).to_have_value("0.6")  # the demo's sample picture is there: so is strength
    tab.get_by_role("button", name="Remove Image").click()  # the visitor's own picture instead
    expect(strength).to_be_hidden()  # no picture, no strength
    tab.locator("input[type=file]").set_input_files(str(picture))
    expect(strength).to_be_visible()
    set_number(tab, "Steps", 50)  # the demo's most: 30 steps at strength 0.6
    steps = tab.get_by_role("spinbutton", name="number input for Steps", exact=True)
    tab.get_by_label("Prompt", exact=True).fill("a blue star on a white background")
    # held at its second step until Stop has reached the server: a quiet machine finishes
    # 30 steps before a click, so the stop is not left to chance
    with StepHold(get_backend("diffusers"), at=2) as held:
        tab.get_by_role("button", name="Generate", exact=True).click()
        stop = tab.get_by_role("button", name="Stop generating", exact=True)
        expect(stop).to_be_visible()
        tab.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)  # the edit forming
        expect(tab.get_by_test_id("progress-text")).to_contain_text(" / 30")
        with page.expect_response(lambda response: response.url.endswith("/run/predict")):
            stop.click()
        held.release()
        view_is(tab, "cancelled")
    assert held.reached.is_set(), "the run was never held"
    expect(tab.get_by_role("button", name="Generate", exact=True)).to_be_visible()

    steps.fill("10")
    steps.press("Tab")
    tab.get_by_role("button", name="Generate", exact=True).click()
    view_is(tab, "done")
    link = tab.get_by_test_id("download-link").first
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200
    with PIL.Image.open(io.BytesIO(response.body())) as result:
        assert result.size == (64, 64)  # the input's size
        parameters = result.text["parameters"]
    assert "Denoising strength: 0.6" in parameters and "Steps: 10" in parameters, parameters
    assert not page.errors
