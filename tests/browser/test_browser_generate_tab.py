"""A visitor's first minute with the demo (issue 21), in Chromium: what the bundled model draws
and which words of a prompt it ignores, models that cannot run here marked and refused before a
run in one plain line, a failure that clears when the model changes, the API page's snippets
that run as pasted, the "Advanced settings" accordion, Enter to run, Generate turned into Stop
during a run, and Compare's panels side by side at 1366 px."""

from __future__ import annotations

import subprocess
import sys

import pytest
from browser_helpers import TIMEOUT_MS, wait_view
from playwright.sync_api import expect
from step_counter import StepHold

from gradio_diffusion_preview.plugins import get_backend

pytestmark = pytest.mark.browser


def prompt_box(page):
    return page.get_by_label("Prompt", exact=True).first


def pick_model(page, title: str) -> None:
    page.get_by_label("Model", exact=True).click()
    page.get_by_role("option", name=title, exact=True).click()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_words_the_bundled_model_ignores_are_named_as_the_visitor_types(
    open_page, demo_url, dark
):
    page = open_page(demo_url, dark=dark)
    hint = page.locator(".diffusion-hint").first
    expect(hint).to_contain_text("one shape in a colour on a background")  # before any run
    prompt_box(page).fill("a photo of an astronaut riding a horse on the moon")
    expect(hint).to_contain_text("Nothing to draw here")  # no shape named: what to write
    for word in ("photo", "astronaut", "riding", "horse", "moon"):
        expect(hint).to_contain_text(f"'{word}'")
    prompt_box(page).fill("a red circle riding a horse")
    expect(hint).to_contain_text("Not in this model's words: “riding”, “horse”")
    prompt_box(page).fill("crimson circle, navy background")  # synonyms and commas it reads
    expect(hint).to_contain_text("one shape in a colour on a background")
    prompt_box(page).fill("a red circle on a blue background")
    expect(hint).not_to_contain_text("Not in this model's words")
    assert not page.errors


def test_a_model_that_cannot_run_here_is_marked_and_generate_is_off(open_page, demo_url):
    page = open_page(demo_url)  # the tests run offline: Hugging Face Inference cannot run
    pick_model(page, "FLUX.1 [schnell] (Hugging Face Inference) (off)")
    expect(page.get_by_text("Not available here: this server is offline.")).to_be_visible()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()
    assert "HF_HUB_OFFLINE" not in page.inner_text("body")  # the owner's fix is in the log
    pick_model(page, "Bundled shapes model (64x64)")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    expect(page.get_by_text("Not available here")).to_be_hidden()
    assert not page.errors


def test_a_failure_reads_plainly_and_clears_when_the_model_changes(open_page, demo_url):
    page = open_page(demo_url)
    prompt_box(page).fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    status = page.get_by_test_id("status-message")
    expect(status).to_contain_text("Type a prompt first.")
    expect(status).not_to_contain_text("Invalid request for backend")
    pick_model(page, "Bundled shapes · DPM-Solver++")
    # the previous model's failure is no longer shown: the stage waits for the next run
    wait_view(page, "idle")
    expect(status).not_to_contain_text("Type a prompt")
    assert not page.errors


def test_enter_runs_shift_enter_adds_a_line_and_generate_becomes_stop(open_page, demo_url):
    page = open_page(demo_url)
    advanced = page.get_by_role("button", name="Advanced settings")
    expect(advanced).to_be_visible()
    steps = page.get_by_role("spinbutton", name="number input for Steps", exact=True)
    expect(steps).to_be_hidden()  # the settings wait in the accordion
    advanced.click()
    steps.fill("50")
    steps.press("Tab")
    box = prompt_box(page)
    box.fill("a red circle")
    box.press("Shift+Enter")
    box.type("on a blue background")
    expect(box).to_have_value("a red circle\non a blue background")
    expect(page.get_by_test_id("diffusion-preview")).to_have_attribute("data-view", "idle")
    # the run is held at its second step until Stop has reached the server: on a busy machine
    # 50 steps of the bundled model could otherwise end before the Stop request is handled
    with StepHold(get_backend("diffusers"), at=2) as hold:
        box.press("Enter")  # runs
        stop = page.get_by_role("button", name="Stop generating", exact=True)
        expect(stop).to_be_visible()
        expect(page.get_by_role("button", name="Generate", exact=True)).to_be_hidden()
        page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
        with page.expect_response(lambda response: response.url.endswith("/run/predict")):
            stop.click()  # the second click stops the run, it is not dropped
        hold.release()
        wait_view(page, "cancelled")
    assert hold.reached.is_set(), "the run was never held"
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_visible()
    expect(stop).to_be_hidden()
    assert not page.errors


def test_compare_panels_are_equal_and_side_by_side_at_1366(open_page, demo_url):
    page = open_page(demo_url, width=1366, height=900)
    page.get_by_role("tab", name="Compare", exact=True).click()
    page.get_by_label("Bundled shapes · DDIM").check()  # a fourth model
    panels = page.locator(".diffusion-compare-panels [data-testid='diffusion-preview']")
    expect(panels).to_have_count(4)
    expect(panels.nth(3)).to_be_visible()
    boxes = [panels.nth(i).bounding_box() for i in range(4)]
    widths = [round(b["width"]) for b in boxes]
    tops = [round(b["y"]) for b in boxes]
    assert max(widths) - min(widths) <= 2, widths
    assert len(set(tops)) == 1, tops  # one row
    assert min(widths) >= 280, widths
    assert not page.errors


def test_every_api_page_snippet_runs_as_pasted(open_page, demo_url, tmp_path):
    page = open_page(demo_url)
    page.get_by_text("Use via API").click()
    snippets = page.locator("code", has_text="from gradio_client import Client")
    expect(snippets.first).to_be_visible()
    texts = [snippets.nth(i).inner_text() for i in range(snippets.count())]
    names = ("/generate", "/edit", "/compare")
    endpoints = {name for text in texts for name in names if name in text}
    assert endpoints == set(names), texts
    body = page.inner_text("body")
    assert "partial(func" not in body  # every endpoint has its own description
    # /edit's snippet sends the reader's own picture.png: here the demo's sample picture
    from testenv import load_demo_module

    from gradio_diffusion_preview.generate_tab import API_EXAMPLE_FILE

    load_demo_module().edit_sample().save(tmp_path / API_EXAMPLE_FILE)
    for index, text in enumerate(texts):
        script = tmp_path / f"snippet_{index}.py"
        script.write_text(text)
        ran = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert ran.returncode == 0, (text, ran.stderr[-2000:])
        assert "'status': 'done'" in ran.stdout, ran.stdout[-2000:]
