"""The DiffusionPreview component in Chromium: live previews, progress, final images, Stop,
queue position, batches, the full-size view and errors.

The demo tests drive the real demo (demo/app.py: its tiny random-weight diffusers pipeline); the
others use a small Blocks around a deterministic toy backend, to pin down queueing, batches and
errors without a model.
"""

from __future__ import annotations

import re

import gradio as gr
import PIL.Image
import pytest
from browser_helpers import (
    STEPS_RE,
    TIMEOUT_MS,
    ToyBackend,
    backend_app,
    check_download,
    expect_text,
    expect_value,
    generate,
    open_viewer,
    probe,
    progress_steps,
    set_number,
    show_advanced,
    wait_view,
)
from playwright.sync_api import expect
from step_counter import StepHold
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview
from gradio_diffusion_preview.plugins import get_backend

pytestmark = pytest.mark.browser


# --- the demo ------------------------------------------------------------------------------


def set_demo_size(page, side: int = 128) -> None:
    """Smaller images than the demo's default, to keep the tests quick on a CPU."""
    for label in ("Width", "Height"):
        set_number(page, label, side)


def test_demo_paints_previews_then_final_image_with_download(open_page, demo_url, output_dir):
    page = open_page(demo_url)
    set_demo_size(page)
    set_number(page, "Steps", 6)
    page.evaluate(probe("watch_previews"))
    # iterations 2, 3 and 4 are each held until the page has painted the step before: three
    # distinct previews however busy the machine, then the rest of the run at once
    backend = get_backend("diffusers")
    with (
        StepHold(backend, at=2) as second,
        StepHold(backend, at=3) as third,
        StepHold(backend, at=4) as fourth,
    ):
        generate(page)
        page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
        page.screenshot(path=output_dir / "running.png", full_page=True)
        for painted, hold in enumerate((second, third, fourth), start=1):
            page.wait_for_function(
                f"window.__preview_watch.previews.length >= {painted}", timeout=TIMEOUT_MS
            )
            hold.release()
        page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert fourth.reached.is_set(), "the run was never held"
    page.screenshot(path=output_dir / "done.png", full_page=True)

    seen = page.evaluate("window.__preview_watch")
    assert seen["final_after"] is not None
    assert seen["final_after"] >= 3, f"only {seen['final_after']} distinct previews painted"
    assert seen["broken"] == 0, "a preview was shown before it was decoded"
    assert seen["elements"] == 1, "previews replace the src of one <img>, in place"
    steps = [int(m[1]) for m in map(STEPS_RE.search, seen["steps"]) if m]
    assert steps == sorted(steps), steps
    assert progress_steps(page) == (6, 6)
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    check_download(page)
    assert not page.errors
    page.close()


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the gr.Dropdown labelled ``label``."""
    box = page.get_by_label(label, exact=True)
    show_advanced(page, box)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def slider_box(page, label: str):
    return page.get_by_role("spinbutton", name=f"number input for {label}", exact=True)


def test_demo_controls_follow_the_chosen_model(open_page, demo_url):
    page = open_page(demo_url)
    sampler, previewer = page.get_by_label("Sampler"), page.get_by_label("Step previews")
    show_advanced(page, slider_box(page, "Width"))
    # the bundled model: its own size range, a sampler and a previewer to pick
    expect(slider_box(page, "Width")).to_have_attribute("max", "128")
    expect_value(slider_box(page, "Steps"), "20")
    expect(sampler).to_be_visible()
    expect(previewer).to_be_visible()
    # samplers by AUTOMATIC1111's names, previewers by their labels (values stay latent_rgb...)
    expect_value(sampler, "Default")
    expect_value(previewer, "Latent RGB (fast, blurry)")
    expect(page.get_by_text("Trained in this repository")).to_be_visible()

    # an Inference model with 1 to 4 steps, no guidance, no negative prompt, no sampler; and
    # why it cannot run here, in one plain line, before anyone waits
    pick(page, "Model", "FLUX.1 [schnell] (Hugging Face Inference) (off)")
    expect(slider_box(page, "Steps")).to_have_attribute("max", "4")
    expect_value(slider_box(page, "Steps"), "4")
    expect(slider_box(page, "Guidance")).to_be_hidden()
    expect(page.get_by_label("Negative prompt", exact=True)).to_be_hidden()
    expect(sampler).to_be_hidden()
    expect(page.get_by_text("Not available here: this server is offline.")).to_be_visible()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()

    # another model of the same backend: its own steps and guidance
    pick(page, "Model", "Stable Diffusion XL (Hugging Face Inference) (off)")
    expect(slider_box(page, "Steps")).to_have_attribute("max", "50")
    expect_value(slider_box(page, "Steps"), "30")
    expect_value(slider_box(page, "Guidance"), "7")
    expect(page.get_by_label("Negative prompt", exact=True)).to_be_visible()

    pick(page, "Model", "Bundled shapes model (64x64)")
    expect_value(slider_box(page, "Steps"), "20")
    expect(sampler).to_be_visible()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    assert not page.errors
    page.close()


def test_demo_writes_the_seed_used_back_and_keeps_a_chosen_one(open_page, demo_url):
    page = open_page(demo_url)
    seed_box = page.get_by_role("spinbutton", name="Seed", exact=True)
    random_each_run = page.get_by_label("Random seed each run")
    show_advanced(page, seed_box)
    expect(random_each_run).to_be_checked()
    set_number(page, "Steps", 3)
    pick(page, "Sampler", "DDIM")
    generate(page, "a red circle on a blue background")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    first = page.get_by_test_id("info-seed").inner_text()
    assert first.isdigit()
    expect_value(seed_box, first)  # the seed of the picture on screen, to make it again
    expect(page.get_by_test_id("info-sampler")).to_contain_text("DDIM")

    generate(page, None)  # random each run: a new seed, written back again
    expect(page.get_by_test_id("info-seed")).not_to_have_text(first, timeout=TIMEOUT_MS)
    wait_view(page, "done")
    second = page.get_by_test_id("info-seed").inner_text()
    expect_value(seed_box, second)

    set_number(page, "Seed", 77)  # typing a seed keeps it: random turns off
    expect(random_each_run).not_to_be_checked()
    generate(page, None)
    expect(page.get_by_test_id("info-seed")).to_have_text("77", timeout=TIMEOUT_MS)
    wait_view(page, "done")
    expect_value(seed_box, "77")
    assert not page.errors
    page.close()


def test_demo_stop_mid_run_shows_cancelled_and_server_keeps_serving(
    open_page, demo_url, output_dir
):
    page = open_page(demo_url)
    set_demo_size(page)
    set_number(page, "Steps", 50)  # the demo policy's most
    generate(page)
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    step, total = progress_steps(page)
    assert step < total

    page.get_by_role("button", name="Stop", exact=True).click()
    status = page.get_by_test_id("status-message")
    status.wait_for(timeout=TIMEOUT_MS)
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


def test_demo_use_this_preview_finishes_early_with_a_final_image(open_page, demo_url):
    page = open_page(demo_url)
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


def toy_app(delay: float = 0.05, width: int = 96, height: int = 64, watch_change: bool = False):
    return backend_app(
        ToyBackend(),
        options={"delay": delay},
        width=width,
        height=height,
        watch_change=watch_change,
    )


def test_second_visitor_sees_queue_position_then_their_run(open_page, serve):
    # the first visitor's run holds the app's one slot at a gate (not a run slow enough to
    # outlast the second visitor's start on a busy machine) until the second sees its place
    gate = Gate()
    url = serve(backend_app(CountingBackend(gate=gate)))
    first, second = open_page(url), open_page(url)
    try:
        set_number(first, "Steps", 30)
        gate.release(1)
        generate(first)
        first.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)

        set_number(second, "Steps", 3)
        generate(second, "wait your turn")
        queue = second.get_by_test_id("queue-status")
        queue.wait_for(timeout=TIMEOUT_MS)
        text = queue.inner_text()
        assert re.search(r"Queued: position \d+ of \d+", text), text
        assert second.get_by_role("button", name="Stop", exact=True).is_visible()
    finally:
        gate.open()

    second.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert progress_steps(second) == (3, 3)
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    first.close()
    second.close()


def test_batch_grid_downloads_each_image_and_opens_full_size(open_page, serve, output_dir):
    page = open_page(serve(toy_app(width=128, height=96, watch_change=True)))
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

    dialog = open_viewer(page, 1)
    full = page.get_by_test_id("lightbox-image")
    assert full.evaluate("img => img.naturalWidth") == 128
    page.screenshot(path=output_dir / "lightbox.png")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=TIMEOUT_MS)
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "View image 2 full size", "focus returns to the image that was opened"
    page.close()


def test_invalid_request_shows_the_message_as_an_alert(open_page, serve):
    page = open_page(serve(toy_app()))
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


def test_examples_show_a_thumbnail_of_the_final_image(open_page, serve, tmp_path):
    """Example.svelte: a DiffusionPreview in gr.Examples shows its final image as a thumbnail,
    and choosing the example shows it in the component."""
    path = tmp_path / "example.png"
    PIL.Image.new("RGB", (48, 32), (30, 160, 90)).save(path)
    with gr.Blocks() as app:
        preview = DiffusionPreview(label="Generation")
        gr.Examples([[str(path)]], inputs=[preview])
    page = open_page(serve(app))
    thumbnail = page.locator(".example.has-image img").first
    thumbnail.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 48", arg=thumbnail.element_handle()
    )
    thumbnail.click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert not page.errors
    page.close()
