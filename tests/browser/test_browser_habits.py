"""gr.Image's habits on DiffusionPreview, in Chromium: ``placeholder`` on the empty stage,
``buttons`` (download, fullscreen), the ``select`` and ``clear`` events, and
``interactive=False`` as display-only. Judged by what the page shows and by event counts."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from browser_helpers import (
    TIMEOUT_MS,
    ToyBackend,
    backend_app,
    generate,
    set_number,
    wait_view,
)
from playwright.sync_api import expect
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview

pytestmark = pytest.mark.browser


def preview_of(app: gr.Blocks) -> DiffusionPreview:
    return next(b for b in app.blocks.values() if isinstance(b, DiffusionPreview))


def toy_app(**component) -> gr.Blocks:
    """A small app around the toy backend, its steps not slowed: these tests judge finished
    runs only (what a run in progress shows is checked on a held run)."""
    return backend_app(ToyBackend(), options={"delay": 0}, **component)


def finish_a_run(page, prompt: str = "a red square") -> None:
    generate(page, prompt)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    wait_view(page, "done")


def test_placeholder_shows_on_the_empty_stage_until_a_run(open_page, serve):
    app = toy_app(placeholder="# Your image\nappears here, step by step")
    page = open_page(serve(app))
    placeholder = page.get_by_test_id("placeholder")
    expect(placeholder.get_by_role("heading", name="Your image")).to_be_visible()
    expect(placeholder.locator("p")).to_have_text("appears here, step by step")
    finish_a_run(page)
    assert page.get_by_test_id("placeholder").count() == 0
    assert not page.errors


def test_without_buttons_a_final_image_offers_no_download_and_no_viewer(open_page, serve):
    page = open_page(serve(toy_app(buttons=[])))
    finish_a_run(page)
    assert page.get_by_test_id("final-image").count() == 1
    assert page.get_by_test_id("download-link").count() == 0
    assert page.get_by_test_id("tile-button").count() == 0
    finish_a_run(page, "a blue square")  # two results: a history strip would be shown now
    assert page.get_by_test_id("history").count() == 0
    assert not page.errors


def test_select_reports_the_clicked_image_and_fullscreen_is_off(open_page, serve):
    app = toy_app(buttons=["download"])
    with app:
        chosen = gr.Textbox(label="Chosen")

        def on_select(evt: gr.SelectData) -> str:
            return f"{evt.index} {Path(evt.value['image']['path']).name}"

        preview_of(app).select(on_select, None, chosen)
    page = open_page(serve(app))
    set_number(page, "Images", 2)
    finish_a_run(page)
    assert page.get_by_test_id("download-link").count() == 2
    page.get_by_role("button", name="Select image 2").click()
    expect(page.get_by_label("Chosen")).to_have_value("1 a-red-square-8.png", timeout=TIMEOUT_MS)
    assert page.get_by_test_id("viewer").count() == 0
    assert not page.errors


def test_clear_empties_the_component_and_fires_clear_once(open_page, serve):
    app = toy_app()
    with app:
        cleared = gr.Number(0, label="cleared")
        preview_of(app).clear(lambda n: n + 1, cleared, cleared)
        read = gr.Button("Read the value")
        seen = gr.Textbox(label="Seen")
        read.click(lambda value: value.status if value else "None", preview_of(app), seen)
    page = open_page(serve(app))
    assert page.get_by_test_id("clear-button").count() == 0  # nothing to clear yet
    finish_a_run(page)
    page.get_by_role("button", name="Read the value").click()
    expect(page.get_by_label("Seen")).to_have_value("done", timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Clear", exact=True).click()
    wait_view(page, "idle")
    expect(page.get_by_label("cleared")).to_have_value("1", timeout=TIMEOUT_MS)
    assert page.get_by_test_id("final-image").count() == 0
    assert page.get_by_test_id("clear-button").count() == 0
    page.get_by_role("button", name="Read the value").click()  # as an input: empty
    expect(page.get_by_label("Seen")).to_have_value("None", timeout=TIMEOUT_MS)
    finish_a_run(page)  # the component works as before after a clear
    assert page.get_by_label("cleared").input_value() == "1"
    assert not page.errors


def test_no_clear_button_by_default(open_page, serve):
    page = open_page(serve(toy_app()))
    finish_a_run(page)
    assert page.get_by_test_id("clear-button").count() == 0
    assert not page.errors


def test_interactive_false_is_display_only(open_page, serve):
    gate = Gate()  # the run waits after its first step until the running page is checked
    app = backend_app(CountingBackend(gate=gate), interactive=False)  # it can stop and finish early
    with app:
        preview_of(app).clear(lambda: None, None, None)
    page = open_page(serve(app))
    gate.release(1)
    generate(page, "a red square")
    wait_view(page, "running")
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    assert page.get_by_role("button", name="Use this preview").count() == 0
    gate.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    wait_view(page, "done")
    assert page.get_by_test_id("clear-button").count() == 0
    assert page.get_by_role("button", name="Reuse").count() == 0
    assert page.get_by_test_id("download-link").count() == 1  # still an output to view
    assert not page.errors
