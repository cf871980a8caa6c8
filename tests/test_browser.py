"""The DiffusionPreview component in Chromium: live previews, progress, final images, Stop,
queue position, batches, the full-size view and errors.

The demo tests drive the real demo (demo/app.py: its tiny random-weight diffusers pipeline); the
others use a small Blocks around a deterministic toy backend, to pin down queueing, batches and
errors without a model.
"""

from __future__ import annotations

import re
import time

import gradio as gr
import numpy as np
import PIL.Image
import pytest
from conftest import load_demo_module
from playwright.sync_api import expect

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    DiffusionPreview,
    Finished,
    ModelInfo,
    Registry,
    Started,
    Step,
    hookimpl,
    stream,
)

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
STEPS_RE = re.compile(r"step (\d+) / (\d+)")

# Records, from inside the page, every distinct preview the component paints and the step
# counter, until the first final image appears.
WATCH_PREVIEWS_JS = """
() => {
  const root = document.querySelector('[data-testid="diffusion-preview"]');
  const seen = { previews: [], broken: 0, elements: 0, steps: [], final_after: null };
  let last_img = null;
  const check = () => {
    if (seen.final_after !== null) return;
    const img = root.querySelector('[data-testid="preview-image"]');
    if (img && img !== last_img) {
      last_img = img;
      seen.elements += 1;
    }
    if (img && img.getAttribute('src') && !seen.previews.includes(img.getAttribute('src'))) {
      seen.previews.push(img.getAttribute('src'));
      if (!(img.complete && img.naturalWidth > 0)) seen.broken += 1;
    }
    const text = root.querySelector('[data-testid="progress-text"]');
    if (text && seen.steps[seen.steps.length - 1] !== text.textContent) {
      seen.steps.push(text.textContent);
    }
    if (root.querySelector('[data-testid="final-image"]')) {
      seen.final_after = seen.previews.length;
    }
  };
  new MutationObserver(check).observe(root, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ['src'],
  });
  window.__preview_watch = seen;
}
"""


# --- helpers -------------------------------------------------------------------------------


def open_app(browser, url: str, dark: bool = False):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + ("?__theme=dark" if dark else ""))
    page.get_by_test_id("diffusion-preview").wait_for(timeout=TIMEOUT_MS)
    page.errors = errors
    return page


def set_number(page, label: str, value: float) -> None:
    """Set a gr.Number, or the number box of a gr.Slider, labelled ``label``."""
    box = page.get_by_role("spinbutton", name=f"number input for {label}", exact=True)
    if box.count() == 0:
        box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def generate(page, prompt: str = "a lighthouse at dusk") -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()


def progress_steps(page) -> tuple[int, int]:
    match = STEPS_RE.search(page.get_by_test_id("progress-text").inner_text())
    assert match, page.get_by_test_id("progress-text").inner_text()
    return int(match[1]), int(match[2])


def check_download(page, index: int = 0) -> None:
    link = page.get_by_test_id("download-link").nth(index)
    href = link.get_attribute("href")
    assert href and link.get_attribute("download")
    response = page.request.get(href)
    assert response.status == 200, href
    assert response.headers["content-type"].startswith("image/"), response.headers
    assert len(response.body()) > 100


def expect_value(locator, value: str) -> None:
    expect(locator).to_have_value(value, timeout=10_000)


def expect_text(locator, text: str) -> None:
    expect(locator).to_contain_text(text, timeout=10_000)


# --- the demo ------------------------------------------------------------------------------


def set_demo_size(page, side: int = 128) -> None:
    """Smaller images than the demo's default, to keep the tests quick on a CPU."""
    for label in ("Width", "Height"):
        set_number(page, label, side)


@pytest.fixture(scope="module")
def demo_blocks():
    return load_demo_module().build_demo()


def test_demo_paints_previews_then_final_image_with_download(
    browser, serve, demo_blocks, output_dir
):
    page = open_app(browser, serve(demo_blocks))
    set_demo_size(page)
    set_number(page, "Steps", 24)
    page.evaluate(WATCH_PREVIEWS_JS)
    generate(page)

    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=output_dir / "running.png", full_page=True)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=output_dir / "done.png", full_page=True)

    seen = page.evaluate("window.__preview_watch")
    assert seen["final_after"] is not None
    assert seen["final_after"] >= 3, f"only {seen['final_after']} distinct previews painted"
    assert seen["broken"] == 0, "a preview was shown before it was decoded"
    assert seen["elements"] == 1, "previews replace the src of one <img>, in place"
    steps = [int(m[1]) for m in map(STEPS_RE.search, seen["steps"]) if m]
    assert steps == sorted(steps), steps
    assert progress_steps(page) == (24, 24)
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    check_download(page)
    assert not page.errors
    page.close()


def test_demo_stop_mid_run_shows_cancelled_and_server_keeps_serving(
    browser, serve, demo_blocks, output_dir
):
    page = open_app(browser, serve(demo_blocks))
    set_demo_size(page)
    set_number(page, "Steps", 50)  # the demo policy's most
    generate(page)
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    step, total = progress_steps(page)
    assert step < total

    page.get_by_role("button", name="Stop", exact=True).click()
    status = page.get_by_test_id("status-message")
    status.wait_for(timeout=5_000)
    assert status.inner_text().strip() == "Cancelled"
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    page.screenshot(path=output_dir / "cancelled.png", full_page=True)
    # The run stays cancelled: no final image arrives later.
    page.wait_for_timeout(1_000)
    assert page.get_by_test_id("final-image").count() == 0

    set_number(page, "Steps", 4)
    generate(page, "a second run")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert progress_steps(page) == (4, 4)
    assert page.get_by_test_id("status-message").count() == 0
    check_download(page)
    assert not page.errors
    page.close()


def test_demo_use_this_preview_finishes_early_with_a_final_image(browser, serve, demo_blocks):
    page = open_app(browser, serve(demo_blocks))
    set_demo_size(page)
    set_number(page, "Steps", 50)  # the demo policy's most
    generate(page)
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)

    page.get_by_role("button", name="Use this preview", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    step, total = progress_steps(page)
    assert 0 < step < total == 50
    assert "Finished early" in page.get_by_test_id("status-message").inner_text()
    check_download(page)
    assert not page.errors
    page.close()


# --- a toy backend, for what the demo cannot pin down -------------------------------------


class ToyBackend(Backend):
    """Fades a noise latent into a gradient; ``options['delay']`` seconds per step."""

    id = "toy"
    display_name = "Toy"
    location = "local"
    capabilities = Capabilities(any_model=True, options={"delay": "seconds per step"})

    def models(self):
        return [ModelInfo(id="toy-1")]

    def generate(self, request, control):
        width, height = request.width, request.height
        pw, ph = max(1, width // 8), max(1, height // 8)
        yield Started(
            total_steps=request.steps,
            model=request.model,
            seeds=[request.seed],
            width=width,
            height=height,
            num_images=request.num_images,
            preview_size=(pw, ph),
        )
        noise = np.random.default_rng(request.seed).integers(0, 255, (ph, pw, 3)).astype(float)
        yy, xx = np.mgrid[0:ph, 0:pw]
        target = np.stack([xx / pw * 255, yy / ph * 255, np.full_like(xx, 128.0)], -1)
        for step in range(1, request.steps + 1):
            if control.cancelled:
                return
            time.sleep(request.options.get("delay", 0.05))
            t = step / request.steps
            yield Step(step, request.steps, ((1 - t) * noise + t * target).astype(np.uint8))
        final = PIL.Image.fromarray(target.astype(np.uint8)).resize((width, height))
        seeds = [request.seed + i for i in range(request.num_images)]
        yield Finished([final] * request.num_images, seeds)


class ToyPlugin:
    @hookimpl
    def register_backends(self, register):
        register(ToyBackend())


def toy_app(delay: float = 0.05, width: int = 96, height: int = 64, watch_change: bool = False):
    import gradio as gr

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(ToyPlugin(), "toy")

    def run(prompt, steps, seed, images):
        if prompt == "raise":
            raise RuntimeError("the handler itself failed")
        yield from stream(
            "toy",
            registry=registry,
            prompt=prompt,
            steps=int(steps),
            seed=int(seed),
            num_images=int(images),
            width=width,
            height=height,
            options={"delay": delay},
        )

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        steps = gr.Number(12, label="Steps", precision=0)
        seed = gr.Number(7, label="Seed", precision=0)
        images = gr.Number(1, label="Images", precision=0)
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation", height=360)
        preview.attach_run(button.click(run, [prompt, steps, seed, images], preview))
        if watch_change:
            last_status = gr.Textbox(label="Last status")
            preview.change(
                lambda value: value.status if value else "none", preview, last_status, queue=False
            )
    return demo


def test_second_visitor_sees_queue_position_then_their_run(browser, serve):
    url = serve(toy_app(delay=0.1))
    first, second = open_app(browser, url), open_app(browser, url)
    set_number(first, "Steps", 30)
    generate(first)
    first.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)

    set_number(second, "Steps", 3)
    generate(second, "wait your turn")
    queue = second.get_by_test_id("queue-status")
    queue.wait_for(timeout=10_000)
    assert re.search(r"Queued: position \d+ of \d+", queue.inner_text()), queue.inner_text()
    assert second.get_by_role("button", name="Stop", exact=True).is_visible()

    second.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert progress_steps(second) == (3, 3)
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    first.close()
    second.close()


def test_batch_grid_downloads_each_image_and_opens_full_size(browser, serve, output_dir):
    page = open_app(browser, serve(toy_app(width=128, height=96, watch_change=True)))
    set_number(page, "Images", 3)
    set_number(page, "Steps", 4)
    generate(page)
    finals = page.get_by_test_id("final-image")
    finals.first.wait_for(timeout=TIMEOUT_MS)
    assert finals.count() == 3
    assert page.get_by_test_id("download-link").count() == 3
    for index in range(3):
        check_download(page, index)
    tops = {round(finals.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 1, "three images sit in one row"
    # The component dispatched "change" for the final value.
    expect_value(page.get_by_label("Last status"), "done")

    finals.nth(1).click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=5_000)
    full = page.get_by_test_id("lightbox-image")
    assert full.evaluate("img => img.naturalWidth") == 128
    page.screenshot(path=output_dir / "lightbox.png")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=5_000)
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "View image 2 full size", "focus returns to the image that was opened"
    page.close()


def test_invalid_request_shows_the_message_as_an_alert(browser, serve):
    page = open_app(browser, serve(toy_app()))
    generate(page, prompt="   ")
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=TIMEOUT_MS)
    assert "prompt" in alert.inner_text()
    assert page.get_by_test_id("status-message").get_attribute("role") == "alert"

    # An exception in the event handler (not an error state) also ends in the error state;
    # Gradio's own error notice carries its message.
    generate(page, prompt="raise")
    expect_text(page.get_by_test_id("status-message"), "The run failed")
    expect(page.get_by_text("the handler itself failed").first).to_be_visible()
    page.close()


def test_examples_show_a_thumbnail_of_the_final_image(browser, serve, tmp_path):
    """Example.svelte: a DiffusionPreview in gr.Examples shows its final image as a thumbnail,
    and choosing the example shows it in the component."""
    path = tmp_path / "example.png"
    PIL.Image.new("RGB", (48, 32), (30, 160, 90)).save(path)
    with gr.Blocks() as app:
        preview = DiffusionPreview(label="Generation")
        gr.Examples([[str(path)]], inputs=[preview])
    page = open_app(browser, serve(app))
    thumbnail = page.locator(".example.has-image img").first
    thumbnail.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 48", arg=thumbnail.element_handle()
    )
    thumbnail.click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert not page.errors
    page.close()
