"""What people see around the previews, in Chromium: the full-size viewer, generation info in
the page and in the PNG, reuse, no blank stage, one tile per batch image, contrast, keyboard,
waiting backends, errors, cancel, the queue, narrow screens and the history strip.

Apps are small Blocks around deterministic test backends (tests/browser_helpers.py), except
the reuse test, which drives the real demo.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import PIL.Image
import pytest
from browser_helpers import (
    TIMEOUT_MS,
    StepCodeBackend,
    ToyBackend,
    backend_app,
    choose_backend,
    expect_value,
    generate,
    open_viewer,
    probe,
    progress_steps,
    set_number,
    view_of,
    wait_view,
)
from playwright.sync_api import expect
from toy_backends import BatchPreviewBackend, CountingBackend, Gate, WaitingBackend

from gradio_diffusion_preview import Failed, Status

pytestmark = pytest.mark.browser

FINAL_FILES = re.compile(r".*/gradio_api/file=.*\.(png|webp)$")


@pytest.fixture(scope="module")
def toy_url(serve_module) -> str:
    """One app, shared: the toy backend at 128x96."""
    return serve_module(backend_app(ToyBackend(), width=128, height=96))


@pytest.fixture(scope="module")
def counting_app(serve_module) -> tuple[str, CountingBackend]:
    """One app, shared: a counting backend (and the backend, to count steps)."""
    backend = CountingBackend()
    return serve_module(backend_app(backend)), backend


@pytest.fixture
def counting(counting_app) -> Iterator[tuple[str, CountingBackend]]:
    """The shared counting app, its backend's steps waiting at this test's gate (``.gate``;
    opened after the test)."""
    backend = counting_app[1]
    gate = backend.gate = Gate()
    yield counting_app
    gate.open()


RECTS_JS = """els => els.map(el => {
  const r = el.getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height };
})"""


def box(locator) -> dict:
    bounds = locator.bounding_box()
    assert bounds is not None
    return bounds


# --- the full-size viewer --------------------------------------------------------------------


def test_viewer_shows_the_image_larger_than_inline_with_zoom_next_and_caption(open_page, toy_url):
    page = open_page(toy_url)
    set_number(page, "Images", 2)
    set_number(page, "Steps", 4)
    generate(page, "a lighthouse at dusk")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    inline = box(page.get_by_test_id("final-image").first)

    viewer = open_viewer(page, 0)
    image = page.get_by_test_id("lightbox-image")
    expect(image).to_have_js_property("complete", True)
    full = box(image)
    assert full["width"] >= inline["width"], (full, inline)
    assert full["width"] >= 128 and full["height"] >= 96, "at least the natural size"
    assert full["width"] <= 1000 and full["height"] <= 900, "fitted to the window"
    caption = page.get_by_test_id("viewer-caption")
    expect(caption).to_contain_text("a lighthouse at dusk")
    expect(caption).to_contain_text("Seed: 7")
    expect(caption).to_contain_text("Steps: 4")
    expect(caption).to_contain_text("Size: 128×96")

    page.keyboard.press("ArrowRight")
    expect(caption).to_contain_text("Seed: 8")
    expect(page.get_by_test_id("viewer-counter")).to_have_text("2 / 2")
    page.keyboard.press("ArrowLeft")
    expect(caption).to_contain_text("Seed: 7")

    fitted = box(image)["width"]
    page.keyboard.press("+")
    expect(page.get_by_test_id("viewer-zoom")).not_to_contain_text("Fit")
    assert box(image)["width"] > fitted
    page.keyboard.press("0")
    expect(page.get_by_test_id("viewer-zoom")).to_contain_text("Fit")
    assert box(image)["width"] == pytest.approx(fitted, abs=1)

    page.keyboard.press("Escape")
    viewer.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert not page.errors
    page.close()


# --- generation info: in the page, in the PNG, and reused ------------------------------------


def test_downloaded_png_carries_its_settings_and_is_named_after_prompt_and_seed(
    open_page, toy_url, tmp_path
):
    page = open_page(toy_url)
    page.get_by_label("Negative prompt", exact=True).fill("blurry, low quality")
    set_number(page, "Steps", 4)
    set_number(page, "Seed", 1234)
    generate(page, "A red lighthouse, at dusk")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)

    info = page.get_by_test_id("generation-info")
    expect(info).to_contain_text("A red lighthouse, at dusk")
    expect(info).to_contain_text("blurry, low quality")
    expect(page.get_by_test_id("info-seed")).to_have_text("1234")
    expect(page.get_by_test_id("info-steps")).to_have_text("4")
    expect(page.get_by_test_id("info-model")).to_have_text("toy-1")

    with page.expect_download() as download_info:
        page.get_by_test_id("download-link").first.click()
    download = download_info.value
    assert download.suggested_filename == "a-red-lighthouse-at-dusk-1234.png"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with PIL.Image.open(path) as image:
        parameters = image.text["parameters"]
        settings = json.loads(image.text["gradio_diffusion_preview"])
    prompt, negative, line = parameters.split("\n")
    assert prompt == "A red lighthouse, at dusk"
    assert negative == "Negative prompt: blurry, low quality"
    assert line.startswith("Steps: 4, Sampler: toy-euler, CFG scale: 7.5, Seed: 1234, ")
    assert "Size: 128x96, Model: toy-1, Backend: toy" in line
    assert settings["seed"] == 1234 and settings["prompt"] == "A red lighthouse, at dusk"

    # "Copy info" copies the same text, for pasting into another tool.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_test_id("copy-info").click()
    expect(page.get_by_test_id("copy-info")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == parameters
    assert not page.errors
    page.close()


def test_reuse_fills_the_demos_inputs_with_the_seed_and_settings(open_page, demo_url):
    page = open_page(demo_url)
    for label in ("Width", "Height"):
        set_number(page, label, 128)
    set_number(page, "Steps", 3)
    expect_value(page.get_by_role("spinbutton", name="Seed", exact=True), "-1")
    generate(page, "a reused lighthouse")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    seed = page.get_by_test_id("info-seed").inner_text()
    assert seed.isdigit()

    page.get_by_label("Prompt", exact=True).fill("something else")
    set_number(page, "Steps", 9)
    page.get_by_test_id("reuse").click()
    expect_value(page.get_by_role("spinbutton", name="Seed", exact=True), seed)
    expect_value(page.get_by_label("Prompt", exact=True), "a reused lighthouse")
    expect_value(page.get_by_role("spinbutton", name="number input for Steps"), "3")

    # The viewer's Reuse does the same for the image shown.
    set_number(page, "Seed", 5)
    open_viewer(page, 0)
    page.get_by_test_id("viewer-reuse").click()
    expect_value(page.get_by_role("spinbutton", name="Seed", exact=True), seed)
    assert not page.errors
    page.close()


# --- the stage is never blank -----------------------------------------------------------------


def wait_frames(page, more: int) -> None:
    """Wait until the ``no_blank`` probe has sampled ``more`` frames beyond those it has now."""
    seen = page.evaluate("window.__stage.frames")
    page.wait_for_function(f"window.__stage.frames >= {seen + more}", timeout=TIMEOUT_MS)


def test_stage_is_never_blank_during_the_final_swap_or_a_new_runs_start(open_page, serve):
    """Each window the stage could go blank in is held open while the probe samples it: the
    final image's download is held at the network, a new run at its gate before step 1."""
    backend = CountingBackend(gate=Gate())
    page = open_page(serve(backend_app(backend, width=128, height=96)))
    held: list = []

    def hold_final(route):  # a slow link: the final image arrives when the test lets it
        if held is None:
            route.continue_()
        else:
            held.append(route)

    page.route(FINAL_FILES, hold_final)
    set_number(page, "Steps", 6)
    backend.gate.release(1)
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    page.evaluate(probe("no_blank"))
    backend.gate.open()  # the other steps, then the final image, held on its way
    for _ in range(TIMEOUT_MS // 20):
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the page never asked for the final image"
    wait_frames(page, 10)  # the stage sampled while the final image is still coming
    routes, held = held, None
    for route in routes:
        route.continue_()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    swap = page.evaluate("window.__stage.stop()")
    assert swap["frames"] >= 10, swap
    assert swap["blank"] == 0, f"blank frames before the final image: {swap}"

    # A new run: the previous result stays up until the new run's first preview.
    backend.gate = Gate()  # the new run waits before its first step
    page.evaluate(probe("no_blank"))
    generate(page, "a second lighthouse")
    expect(page.get_by_test_id("diffusion-preview")).not_to_have_attribute("data-view", "done")
    wait_frames(page, 10)  # the stage sampled while the new run has no preview yet
    backend.gate.release(1)  # its first step only: held after it, its preview stays up
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    start = page.evaluate("window.__stage.stop()")
    backend.gate.open()
    assert start["frames"] >= 10, start
    assert start["blank"] == 0, f"blank frames before the new run's first preview: {start}"
    assert not page.errors
    page.close()


def test_a_batch_shows_one_tile_per_image_from_first_preview_to_final(open_page, serve):
    gate = Gate()  # the run waits after its first step until the tiles are measured
    page = open_page(serve(backend_app(BatchPreviewBackend(gate=gate))))
    set_number(page, "Images", 3)
    set_number(page, "Steps", 30)
    gate.release(1)
    try:
        generate(page)
        previews = page.get_by_test_id("preview-image")
        previews.first.wait_for(timeout=TIMEOUT_MS)
        expect(previews).to_have_count(3)
        boxes = previews.evaluate_all(RECTS_JS)  # all three at once, before the run ends
        assert len(boxes) == 3, boxes
        assert len({round(b["x"]) for b in boxes}) == 3, "three tiles side by side"
    finally:
        gate.open()
    finals = page.get_by_test_id("final-image")
    expect(finals).to_have_count(3, timeout=TIMEOUT_MS)
    for before, index in zip(boxes, range(3), strict=True):
        after = box(finals.nth(index))
        for key in ("x", "y", "width", "height"):
            assert after[key] == pytest.approx(before[key], abs=1), (index, before, after)
    assert not page.errors
    page.close()


# --- accessibility ----------------------------------------------------------------------------


def low_contrast(page) -> list[dict]:
    return [item for item in page.evaluate(probe("contrast")) if item["ratio"] < item["required"]]


@pytest.fixture(scope="module")
def contrast_app(serve_module) -> tuple[str, CountingBackend]:
    """One app for the contrast tests: a counting backend (the default; each test gives it its
    own gate), one that waits at the service and one that fails, saying when to come back."""
    counting = CountingBackend()
    waiting = WaitingBackend(waits=[(Status("queued", position=2, queue_size=4, eta=30), 60)])
    failing = WaitingBackend(
        waits=[(Status("generating"), 0.05)],
        failure=Failed("Too many requests. Fix: wait a little.", "rate_limited", retry_after=30),
    )
    failing.id = "failing-later"
    return serve_module(backend_app(counting, waiting, failing)), counting


@pytest.fixture
def held(contrast_app) -> Iterator[Gate]:
    """The contrast app's counting backend waits at this test's gate (opened after it)."""
    gate = contrast_app[1].gate = Gate()
    yield gate
    gate.open()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_all_text_meets_wcag_aa_contrast(open_page, contrast_app, held, output_dir, dark):
    page = open_page(contrast_app[0], dark=dark)
    seen: dict[str, list[dict]] = {"idle": low_contrast(page)}

    page.get_by_label("Negative prompt", exact=True).fill("blurry")
    set_number(page, "Steps", 30)
    held.release(1)  # the run is held after its first step while it is checked
    generate(page)
    page.get_by_role("button", name="Stop", exact=True).wait_for(timeout=TIMEOUT_MS)
    page.get_by_test_id("progress-text").wait_for(timeout=TIMEOUT_MS)
    seen["running"] = low_contrast(page)
    held.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    seen["done"] = low_contrast(page)
    page.screenshot(path=output_dir / f"{'dark' if dark else 'light'}.png", full_page=True)
    open_viewer(page, 0)
    seen["viewer"] = low_contrast(page)
    page.keyboard.press("Escape")

    choose_backend(page, "waiting")
    generate(page)
    page.get_by_test_id("waiting-status").wait_for(timeout=TIMEOUT_MS)
    seen["waiting"] = low_contrast(page)
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_view(page, "cancelled")
    seen["cancelled"] = low_contrast(page)

    choose_backend(page, "failing-later")
    generate(page)
    page.get_by_test_id("retry-text").wait_for(timeout=TIMEOUT_MS)
    seen["error"] = low_contrast(page)

    failures = {state: items for state, items in seen.items() if items}
    assert not failures, json.dumps(failures, indent=1)
    page.close()


def test_escape_stops_a_run_while_the_component_has_focus(open_page, counting):
    url, backend = counting
    page = open_page(url)
    set_number(page, "Steps", 400)
    ended, steps = backend.runs_ended, backend.steps_run
    backend.gate.release(1)  # then held: a run that is not stopped never ends
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    page.keyboard.press("Escape")  # focus is on the Generate button: nothing happens
    page.wait_for_timeout(300)
    assert view_of(page) == "running"

    page.get_by_test_id("stage").click()
    page.keyboard.press("Escape")
    wait_view(page, "cancelled", timeout=TIMEOUT_MS)
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    # the backend's run, held at its gate, ends: the cancel reached it
    for _ in range(TIMEOUT_MS // 50):
        if backend.runs_ended > ended:
            break
        page.wait_for_timeout(50)
    assert backend.runs_ended == ended + 1, "the backend's run did not end"
    assert backend.steps_run - steps == 1, "the backend ran on after the step let through"
    page.close()


def test_progress_is_announced_and_exposed_as_a_progressbar(open_page, counting):
    url, backend = counting
    page = open_page(url)
    live = page.get_by_test_id("live-status")
    set_number(page, "Steps", 40)
    backend.gate.release(10)  # then held at a quarter until it is announced
    generate(page)
    # announced by quarters; on a busy machine steps coalesce (latest wins), so a quarter may
    # be passed over: any quarter, with its step, is the announcement
    quarter = re.compile(r"Generating, (25|50|75)% \(step (10|20|30) of 40\)")
    expect(live).to_contain_text(quarter, timeout=TIMEOUT_MS)
    bar = page.get_by_role("progressbar", name="Denoising progress")
    assert int(bar.get_attribute("aria-valuemax")) == 40
    assert 0 < int(bar.get_attribute("aria-valuenow")) <= 40
    backend.gate.open()
    expect(live).to_have_text("Done: 1 image", timeout=TIMEOUT_MS)
    assert live.get_attribute("aria-live") == "polite"
    page.close()


# --- states: waiting backends, errors, cancel, finish early, the queue -----------------------


def seconds_in(text: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)s", text)
    assert match, text
    return float(match[1])


def next_tick(locator, before: str) -> str | None:
    """Wait for a countdown's next tick: ``locator``'s text once it is no longer ``before``,
    or None once the element has gone. A countdown that never moves fails on the timeout."""
    for _ in range(TIMEOUT_MS // 50):
        texts = locator.all_inner_texts()
        if not texts or texts[0] != before:
            return texts[0] if texts else None
        locator.page.wait_for_timeout(50)
    raise AssertionError(f"{before!r} did not change")


def test_a_waiting_backend_shows_its_phase_elapsed_time_and_a_counting_down_eta(open_page, serve):
    gate = Gate()  # the test moves the backend from one status to the next
    backend = WaitingBackend(
        waits=[(Status("queued", position=3, queue_size=5, eta=20), 0), (Status("loading"), 0)],
        gate=gate,
    )
    page = open_page(serve(backend_app(backend)))
    generate(page)
    status = page.get_by_test_id("waiting-status")
    status.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("phase-text")).to_have_text("Queued at the service…")
    expect(page.get_by_test_id("service-position")).to_have_text("Position 3 of 5 at the service")
    eta, elapsed = page.get_by_test_id("eta-text"), page.get_by_test_id("elapsed-text")
    eta_before, elapsed_before = eta.inner_text(), elapsed.inner_text()
    eta_after, elapsed_after = next_tick(eta, eta_before), next_tick(elapsed, elapsed_before)
    assert eta_after and seconds_in(eta_after) < seconds_in(eta_before), "the ETA counts down"
    assert elapsed_after and seconds_in(elapsed_after) > seconds_in(elapsed_before)
    gate.release(1)
    expect(page.get_by_test_id("phase-text")).to_have_text("Loading the model…")
    gate.release(1)
    page.get_by_test_id("final-image").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_test_id("progress-text").count() == 0, "no steps were reported"
    assert not page.errors
    page.close()


def test_an_error_shows_its_reason_and_when_to_try_again_in_place(open_page, serve):
    """A failed run ends its event as an error (for API callers), yet the component shows it
    in place: message, reason, retry countdown, the inputs kept (the previous run's image
    gone), no extra error notice; the app's ``.success()`` listener does not run for it."""
    backend = WaitingBackend(
        waits=[(Status("generating"), 0.05)],
        failure=Failed("Too many requests. Fix: wait a little.", "rate_limited", retry_after=12),
    )
    page = open_page(serve(backend_app(ToyBackend(), backend, watch_success=True)))
    set_number(page, "Steps", 3)
    generate(page, "a first try")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect_value(page.get_by_label("Last success"), "a first try")

    choose_backend(page, "waiting")
    # the countdown's texts as the page shows them: a loaded machine can take seconds between
    # the error's arrival and this test's next look at the page
    page.evaluate(probe("text_log"), "retry-text")
    generate(page, "a second try")
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=TIMEOUT_MS)
    expect(alert).to_contain_text("Rate limited")
    expect(alert).to_contain_text("Too many requests. Fix: wait a little.")
    retry = page.get_by_test_id("retry-text")
    next_tick(retry, retry.inner_text())  # it counts down
    shown = page.evaluate("window.__texts['retry-text']")
    counted = [seconds_in(text) for text in shown if text.startswith("Try again in ")]
    # from retry_after, counted from the error's arrival, one second at a time
    assert counted[0] == 12 and counted == sorted(counted, reverse=True), shown
    assert len(shown) >= 2, shown
    # the previous run's image does not sit under the new run's error as if it were its result
    assert page.get_by_test_id("tile").count() == 0
    expect_value(page.get_by_label("Prompt", exact=True), "a second try")
    expect_value(page.get_by_label("Last success"), "a first try")
    assert page.get_by_test_id("toast-body").count() == 0, "no notice repeats the message"
    assert not page.errors
    page.close()


def painted_step(page) -> int:
    red, green, _ = page.evaluate(probe("painted_colour"))
    return round(red / 16) + 16 * round(green / 16)


def test_a_cancelled_run_keeps_its_last_frame_and_that_frames_step(open_page, serve):
    gate = Gate()  # the run is held at its 31st step: it cannot end before Stop on a busy machine
    page = open_page(serve(backend_app(StepCodeBackend(gate=gate))))
    set_number(page, "Steps", 250)
    gate.release(30)
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("progress-text")).to_contain_text(re.compile(r"step 30\b"))
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_view(page, "cancelled", timeout=TIMEOUT_MS)
    page.wait_for_timeout(1_000)  # steps that were already on their way arrive meanwhile
    step, total = progress_steps(page)
    assert total == 250 and 0 < step < 250
    assert painted_step(page) == step, "the counter shows the step of the frame on screen"
    assert page.get_by_test_id("preview-image").count() == 1
    page.close()


def test_a_run_waiting_in_the_apps_queue_shows_cancelled_when_its_event_is_cancelled(
    open_page, serve
):
    """A run still waiting for a slot (status "queued", as a public app's fair queue sends it)
    whose event another event cancels (``cancels=[...]``) ends "Cancelled", not queued forever."""
    import gradio as gr

    from gradio_diffusion_preview import DiffusionPreview, RunState

    def wait_in_line(prompt):  # a fair queue's wait: the place, re-sent every moment
        for _ in range(150):
            yield RunState(status="queued", queue_position=2, queue_size=3, message="In line")
            time.sleep(0.2)

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        preview = DiffusionPreview(label="Generation")
        run = gr.Button("Generate")
        leave = gr.Button("Leave the line")
        event = run.click(wait_in_line, prompt, preview)
        leave.click(None, None, None, cancels=[event])
    page = open_page(serve(demo))
    generate(page)
    wait_view(page, "queued")
    page.get_by_role("button", name="Leave the line", exact=True).click()
    wait_view(page, "cancelled", timeout=TIMEOUT_MS)
    assert not page.errors
    page.close()


def test_use_this_preview_never_shows_cancelled(open_page, counting):
    url, backend = counting
    page = open_page(url)
    set_number(page, "Steps", 120)
    page.evaluate(probe("view_log"))
    backend.gate.release(1)  # then held: the run goes on until "Use this preview"
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Use this preview", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)
    views = page.evaluate("window.__views")
    assert not [entry for entry in views if entry.startswith("cancelled")], views
    assert views[-1].startswith("done|Finished early at step"), views
    page.close()


def test_gradio_queue_eta_counts_down(open_page, serve):
    gate = Gate()  # the second run of the first page holds the slot until it is stopped
    backend = CountingBackend(step_seconds=0.1, gate=gate)
    app = backend_app(backend)
    url = serve(app)
    first, second = open_page(url), open_page(url)
    # One run of 2 s first, so Gradio knows how long a run takes and sends an ETA.
    set_number(first, "Steps", 20)
    gate.release(20)
    generate(first)
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)

    set_number(first, "Steps", 60)
    gate.release(2)
    generate(first)
    first.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    set_number(second, "Steps", 2)  # its run need only finish
    generate(second, "wait your turn")
    eta = second.get_by_test_id("queue-eta")
    eta.wait_for(timeout=TIMEOUT_MS)
    before = eta.inner_text()
    if "starting soon" in before:  # a busy machine: the estimate had run out already
        second.wait_for_timeout(2_200)
        texts = eta.all_inner_texts()
        after = texts[0] if texts else None
    else:
        after = next_tick(eta, before)
    if after is not None:  # still queued: the time left shrinks, down to "starting soon" at most
        if "starting soon" in before:
            assert "starting soon" in after, (before, after)
        elif "starting soon" not in after:
            assert seconds_in(after) < seconds_in(before), "the queue ETA counts down"
    first.get_by_role("button", name="Stop", exact=True).click()
    for _ in range(TIMEOUT_MS // 50):  # the stopped run must not take the second run's steps
        if backend.runs_ended == 2:
            break
        first.wait_for_timeout(50)
    assert backend.runs_ended == 2, "the stopped run did not end"
    gate.release(2)
    second.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    first.close()
    second.close()


# --- narrow screens and the history strip ----------------------------------------------------


@pytest.mark.parametrize("scroll", [True, False], ids=["scrolls", "turned-off"])
def test_on_a_phone_the_component_scrolls_into_view_when_a_run_starts(
    open_page, serve, output_dir, scroll
):
    gate = Gate()  # the run is held after its first step while the page is checked
    app = backend_app(CountingBackend(gate=gate), spacer=1400, scroll_into_view=scroll)
    page = open_page(serve(app), width=390, height=844)
    try:
        start_a_run_and_check_the_scroll(page, gate, output_dir, scroll)
    finally:
        gate.open()
    page.close()


def start_a_run_and_check_the_scroll(page, gate: Gate, output_dir, scroll: bool) -> None:
    """Start a run held after its first step; the stage comes into view, or, with
    scroll_into_view=False, stays below the fold."""
    root = page.get_by_test_id("diffusion-preview")
    # the spacer above it may be laid out after the component mounts (a loaded machine)
    page.wait_for_function(
        "el => el.getBoundingClientRect().top > 844", arg=root.element_handle()
    )  # the component starts below the fold
    set_number(page, "Steps", 30)
    gate.release(1)
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS, state="attached")
    if scroll:
        page.wait_for_function(
            "el => { const box = el.getBoundingClientRect(); "
            "return box.top >= 0 && box.bottom <= innerHeight; }",
            arg=page.get_by_test_id("stage").element_handle(),
            timeout=TIMEOUT_MS,
        )
        gate.open()
        page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
        page.screenshot(path=output_dir / "phone.png")
    else:
        page.wait_for_timeout(1_000)
        assert box(root)["y"] > 844


def test_recent_results_stay_in_a_strip_and_open_full_size(open_page, toy_url):
    page = open_page(toy_url)
    set_number(page, "Steps", 3)
    generate(page, "first lighthouse")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_test_id("history").count() == 0, "one result: no strip yet"
    set_number(page, "Seed", 99)
    generate(page, "second lighthouse")
    expect(page.get_by_test_id("info-seed")).to_have_text("99", timeout=TIMEOUT_MS)
    items = page.get_by_test_id("history-item")
    expect(items).to_have_count(2, timeout=TIMEOUT_MS)
    items.nth(1).click()
    caption = page.get_by_test_id("viewer-caption")
    expect(caption).to_contain_text("first lighthouse")
    expect(caption).to_contain_text("Seed: 7")
    page.keyboard.press("Escape")
    page.close()
