"""An edit as the widget shows it, in Chromium (issue 27): the uploaded picture is the first
frame (before any step preview), the edit forms over it, Stop ends a run, and a finished edit
opens in the viewer beside its input: a before/after slider, moved by keyboard, reveals the
input on one side and the result on the other. The PNG still records `Denoising strength`."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest
from browser_helpers import TIMEOUT_MS
from playwright.sync_api import expect
from step_counter import StepHold
from test_browser_edit_tab import edit_tab, view_is

from gradio_diffusion_preview.plugins import get_backend

pytestmark = pytest.mark.browser

SIDE = 64

# Records, in the page, the kinds of stage image (input frame, step preview, final image) in the
# order they are first painted, and the input frame's source.
WATCH_FRAMES = """(root) => {
  const seen = { order: [], input_src: null };
  const kinds = ["input-frame", "preview-image", "final-image"];
  const check = () => {
    for (const kind of kinds) {
      const img = root.querySelector(`[data-testid="${kind}"]`);
      if (!img) continue;
      if (seen.order[seen.order.length - 1] !== kind) seen.order.push(kind);
      if (kind === "input-frame" && !seen.input_src) seen.input_src = img.getAttribute("src");
    }
  };
  new MutationObserver(check).observe(root, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["src", "data-testid"],
  });
  window.__edit_frames = seen;
}"""


def uploaded_picture(tmp_path) -> tuple[object, np.ndarray]:
    path = tmp_path / "square.png"
    square = PIL.Image.new("RGB", (SIDE, SIDE), "white")
    square.paste((30, 160, 40), (16, 16, 48, 48))
    square.save(path)
    return path, np.asarray(square, float)


def shot(locator) -> np.ndarray:
    """What ``locator`` shows on screen, scaled to the picture's size."""
    with PIL.Image.open(io.BytesIO(locator.screenshot())) as image:
        return np.asarray(image.convert("RGB").resize((SIDE, SIDE), PIL.Image.BILINEAR), float)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_an_edit_forms_over_its_input_and_is_compared_with_it(open_page, demo_url, tmp_path):
    picture, input_pixels = uploaded_picture(tmp_path)
    page = open_page(demo_url)
    tab = edit_tab(page)
    tab.get_by_role("button", name="Remove Image").click()
    tab.locator("input[type=file]").set_input_files(str(picture))
    tab.get_by_role("button", name="Advanced settings").click()
    steps = tab.get_by_role("spinbutton", name="number input for Steps", exact=True)
    steps.fill("150")
    steps.press("Tab")
    tab.get_by_label("Prompt", exact=True).fill("a blue star on a white background")
    tab.get_by_test_id("diffusion-preview").evaluate(WATCH_FRAMES)
    # the run is held before its first preview until the input frame shows, then at its second
    # step until Stop has reached the server: on a busy machine neither is left to chance
    backend = get_backend("diffusers")
    with StepHold(backend, at=1) as first, StepHold(backend, at=2) as second:
        tab.get_by_role("button", name="Generate", exact=True).click()
        # the input first, then the edit forming over it
        tab.get_by_test_id("input-frame").first.wait_for(timeout=TIMEOUT_MS)
        first.release()
        tab.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
        stop = tab.get_by_role("button", name="Stop generating", exact=True)
        with page.expect_response(lambda response: response.url.endswith("/run/predict")):
            stop.click()
        second.release()
        view_is(tab, "cancelled")
    assert first.reached.is_set() and second.reached.is_set(), "the run was never held"
    frames = page.evaluate("window.__edit_frames")
    assert frames["order"][:2] == ["input-frame", "preview-image"], frames["order"]
    assert "/gradio_api/file=" in frames["input_src"]  # a file the app serves
    served = page.request.get(frames["input_src"])
    assert served.status == 200
    with PIL.Image.open(io.BytesIO(served.body())) as shown:
        assert distance(np.asarray(shown.convert("RGB"), float), input_pixels) < 2

    # a finished edit: its PNG info, then the viewer's before/after
    steps.fill("10")
    steps.press("Tab")
    tab.get_by_role("button", name="Generate", exact=True).click()
    view_is(tab, "done")
    link = tab.get_by_test_id("download-link").first
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200
    with PIL.Image.open(io.BytesIO(response.body())) as result:
        assert result.size == (SIDE, SIDE)
        assert "Denoising strength: 0.6" in result.text["parameters"]
        result_pixels = np.asarray(result.convert("RGB"), float)
    assert distance(result_pixels, input_pixels) > 5, "the edit changed nothing to compare"

    tab.get_by_role("button", name="View image 1 full size").click()
    viewer = page.get_by_test_id("viewer")
    slider = viewer.get_by_role("slider", name="Compare input and result")
    expect(slider).to_have_attribute("aria-valuenow", "50")
    expect(viewer.get_by_test_id("before-image")).to_have_attribute("src", frames["input_src"])
    pair = viewer.get_by_test_id("before-after")
    slider.focus()
    slider.press("End")
    expect(slider).to_have_attribute("aria-valuenow", "100")
    expect(slider).to_have_attribute("aria-valuetext", "Input only")
    input_side = shot(pair)
    slider.press("Home")
    expect(slider).to_have_attribute("aria-valuenow", "0")
    result_side = shot(pair)
    # End reveals the input, Home the result (labels and the handle cover a little of each)
    assert distance(input_side, input_pixels) < distance(input_side, result_pixels)
    assert distance(result_side, result_pixels) < distance(result_side, input_pixels)
    for _ in range(3):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuenow", "15")
    slider.press("ArrowLeft")
    expect(slider).to_have_attribute("aria-valuenow", "10")
    expect(viewer).to_be_visible()  # the arrows moved the slider, not the viewer
    # the handle can be dragged too: to three quarters of the picture's width
    box, handle = pair.bounding_box(), slider.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, handle["y"] + handle["height"] / 2, steps=4)
    page.mouse.up()
    expect(slider).to_have_attribute("aria-valuenow", "75")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert not page.errors
