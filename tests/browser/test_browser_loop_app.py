"""A custom-loop app in Chromium (the author's own loop, fed to the widget by ``stream_loop``):
"Use this preview" ends the loop early with the image it returns, Stop leaves it, and finished
runs fill the history strip. The loop holds after its third step until the page's request
reaches it, so the test acts at a known step on any machine."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import PIL.Image
import pytest
from browser_helpers import TIMEOUT_MS, generate, progress_steps
from playwright.sync_api import expect

from gradio_diffusion_preview import DiffusionPreview, LiveSteps, LoopStopped, stream_loop

STEPS = 8
HOLD_AT = 3
reached: list[int] = []
"""The steps the last run's loop reported, for the test to check."""
left: list[str] = []
"""How the last run's loop ended: "stopped" (LoopStopped) or "returned"."""


def my_loop(live: LiveSteps) -> PIL.Image.Image:
    """A stand-in for the author's loop: a brightening red square, one step at a time."""
    reached.clear()
    left.clear()
    level = 0
    for step in range(1, live.total_steps + 1):
        level = step * 30
        try:
            live.step(step, preview=np.full((32, 32, 3), (level, 0, 0), np.uint8))
        except LoopStopped:
            left.append("stopped")
            raise
        reached.append(step)
        if step == HOLD_AT and live.request.prompt != "no hold":
            deadline = time.monotonic() + 60  # only against a hang
            while not (live.finish_requested or live.stopped) and time.monotonic() < deadline:
                time.sleep(0.01)
        if live.finish_requested:
            break
    left.append("returned")
    return PIL.Image.new("RGB", (64, 64), (level, 0, 0))


@pytest.fixture(scope="module")
def loop_url(serve_module) -> str:
    def run(prompt: str):
        yield from stream_loop(my_loop, steps=STEPS, prompt=prompt, width=64, height=64)

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Preview")
        preview.attach_run(button.click(run, prompt, preview))
    return serve_module(demo)


def test_use_this_preview_ends_the_loop_early_and_results_fill_the_history(open_page, loop_url):
    page = open_page(loop_url)
    generate(page, "a red square")
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("progress-text")).to_contain_text(f"{HOLD_AT} / {STEPS}")
    page.get_by_role("button", name="Use this preview", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert reached == [1, 2, 3]
    assert progress_steps(page) == (HOLD_AT, STEPS)
    assert "Finished early" in page.get_by_test_id("status-message").inner_text()

    generate(page, "no hold")
    expect(page.get_by_test_id("history-item")).to_have_count(2, timeout=TIMEOUT_MS)
    assert reached == list(range(1, STEPS + 1))
    assert not page.errors


def test_stop_leaves_the_loop(open_page, loop_url):
    page = open_page(loop_url)
    generate(page, "a red square")
    expect(page.get_by_test_id("progress-text")).to_contain_text(f"{HOLD_AT} / {STEPS}")
    page.get_by_role("button", name="Stop", exact=True).click()
    # "Cancelled", also when Gradio's page ends the cancelled event in its message-less error
    # status (gradio 6.31's cancel race; the widget knows no error was raised).
    expect(page.get_by_test_id("status-message")).to_contain_text("Cancelled")
    deadline = time.monotonic() + 30  # only against a hang
    while not left and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left == ["stopped"] and reached == [1, 2, 3]
    assert page.get_by_test_id("final-image").count() == 0
    assert not page.errors


def test_finished_fires_once_per_run_where_change_fires_on_every_state(open_page, serve):
    def run(prompt: str):
        yield from stream_loop(my_loop, steps=STEPS, prompt="no hold", width=64, height=64)

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Preview")
        finished = gr.Number(0, label="finished")
        changed = gr.Number(0, label="changed")
        preview.attach_run(button.click(run, prompt, preview))
        preview.finished(lambda n: n + 1, finished, finished)
        preview.change(lambda n: n + 1, changed, changed)
    page = open_page(serve(demo))
    for runs in (1, 2):
        generate(page, "a red square")
        page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
        box = page.get_by_label("finished", exact=True)
        expect(box).to_have_value(str(runs), timeout=TIMEOUT_MS)
    assert float(page.get_by_label("changed", exact=True).input_value()) > 2
    page.wait_for_timeout(500)  # nothing more arrives: still one per run
    assert page.get_by_label("finished", exact=True).input_value() == "2"
    assert not page.errors
