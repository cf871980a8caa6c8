"""The demo's Compare tab in Chromium: previews stream in every chosen panel, each ends with its
time and steps per second; one Stop stops all (every panel Cancelled, no frame after); a compare
after that still works, and choosing one more model keeps the others' results. Also /compare
called with gradio_client."""

from __future__ import annotations

import re

import pytest
from browser_helpers import TIMEOUT_MS, probe
from playwright.sync_api import expect
from step_counter import StepHold, StepHolds

from gradio_diffusion_preview.plugins import get_backend

pytestmark = pytest.mark.browser

TIMING_RE = re.compile(r"Done in \d+\.\d s(, \d+\.\d steps/s)?\.")
"""The rate is there when it was measured: a short run's steps can reach its progress as one
(latest wins), leaving none to measure between, on a busy machine."""
CHOSEN = ["Bundled shapes model (64x64)", "Bundled shapes · DPM-Solver++"]


def set_slider(root, label: str, value: int) -> None:
    box = root.get_by_role("spinbutton", name=f"number input for {label}", exact=True)
    if not box.is_visible():  # the settings wait in the "Advanced settings" accordion
        root.get_by_role("button", name="Advanced settings").click()
    box.fill(str(value))
    box.press("Tab")


def compare_page(open_page, url):
    page = open_page(url, width=1200)
    page.get_by_role("tab", name="Compare", exact=True).click()
    root = page.locator(".diffusion-compare")
    root.get_by_role("button", name="Compare", exact=True).wait_for(timeout=TIMEOUT_MS)
    root.get_by_label("Bundled shapes · UniPC", exact=True).uncheck()  # two of the samplers
    panels = root.get_by_test_id("diffusion-preview")
    expect(panels.filter(visible=True)).to_have_count(2, timeout=TIMEOUT_MS)
    for index, label in enumerate(CHOSEN):
        block = panels.nth(index).locator("xpath=ancestor::*[contains(@class, 'block')][1]")
        expect(block).to_contain_text(label)
    return page, root, panels


def expect_views(panels, view: str, timeout: float = TIMEOUT_MS) -> None:
    for index in range(len(CHOSEN)):
        expect(panels.nth(index)).to_have_attribute("data-view", view, timeout=timeout)


def test_compare_streams_every_panel_then_one_stop_stops_all(open_page, demo_url, output_dir):
    page, root, panels = compare_page(open_page, demo_url)
    set_slider(root, "Steps", 24)
    page.evaluate(probe("watch_panels"))
    # Each panel's run (one after the other on the CPU) is held at two steps until its panel
    # has painted a preview there: a busy page paints only the newest of several previews.
    with StepHolds(get_backend("diffusers"), at=(2, 20)) as holds:
        root.get_by_role("button", name="Compare", exact=True).click()
        for index in range(len(CHOSEN)):
            for painted in (1, 2):
                holds.next()
                page.wait_for_function(
                    f"() => window.__panels[{index}].previews.length >= {painted}",
                    timeout=TIMEOUT_MS,
                )
                holds.release()
    expect_views(panels, "done")
    page.screenshot(path=output_dir / "done.png", full_page=True)
    seen = page.evaluate("window.__panels")
    for index in range(len(CHOSEN)):
        assert len(seen[index]["previews"]) >= 2, f"panel {index}: {seen[index]}"
        note = panels.nth(index).get_by_test_id("status-message").inner_text()
        assert TIMING_RE.search(note), note
        assert seen[index]["finals"] == 1
    assert "queued" in seen[1]["views"], "the second sampler waited its turn on the CPU"

    # One Stop stops all: the first panel mid-run, the second waiting in line.
    set_slider(root, "Steps", 50)
    page.evaluate("window.__panels_reset()")
    # the first run is held at its second step until Stop all has reached the server
    with StepHold(get_backend("diffusers"), at=2) as hold:
        root.get_by_role("button", name="Compare", exact=True).click()
        panels.nth(0).get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
        expect(panels.nth(1)).to_have_attribute("data-view", "queued")
        with page.expect_response(lambda response: response.url.endswith("/run/predict")):
            root.get_by_role("button", name="Stop all", exact=True).click()
        hold.release()
        expect_views(panels, "cancelled", timeout=TIMEOUT_MS)
    assert hold.reached.is_set(), "the run was never held"
    page.screenshot(path=output_dir / "cancelled.png", full_page=True)
    at_stop = [(len(p["previews"]), p["finals"]) for p in page.evaluate("window.__panels")]
    page.wait_for_timeout(1_500)
    after = [(len(p["previews"]), p["finals"]) for p in page.evaluate("window.__panels")]
    assert after == at_stop, "no frame and no final image after Stop"
    expect_views(panels, "cancelled", timeout=1_000)

    set_slider(root, "Steps", 4)
    root.get_by_role("button", name="Compare", exact=True).click()
    expect_views(panels, "done")

    # choosing one more model readies its panel and keeps the others' results (the same answer,
    # arriving late on a busy server after a run began, keeps that run)
    for index in (0, 1):  # "done" comes with the state; its image is painted just after
        panels.nth(index).get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    finals = [panels.nth(index).get_by_test_id("final-image").count() for index in (0, 1)]
    root.get_by_label("Bundled shapes · UniPC", exact=True).check()
    third = panels.nth(2)
    block = third.locator("xpath=ancestor::*[contains(@class, 'block')][1]")
    expect(block).to_contain_text("Bundled shapes · UniPC")
    expect(third).to_have_attribute("data-view", "idle")
    expect_views(panels, "done")
    assert [panels.nth(i).get_by_test_id("final-image").count() for i in (0, 1)] == finals
    assert min(finals) >= 1, finals
    assert not page.errors
    page.close()


def test_compare_through_gradio_client(demo_url):
    from gradio_client import Client

    client = Client(demo_url, verbose=False)
    first, second, third, fourth = client.predict(
        ["shapes-dpm", "shapes-ddim"], "a red circle", "", 3, 7, 64, 64, api_name="/compare"
    )
    assert (third, fourth) == (None, None)
    for state, model in ((first, "shapes-dpm"), (second, "shapes-ddim")):
        assert state["status"] == "done" and state["model"] == model
        assert state["seeds"] == [7] and TIMING_RE.search(state["message"])
    with pytest.raises(Exception, match="Choose 2 to 4 different models"):
        client.predict(["shapes"], "a red circle", "", 3, 7, 64, 64, api_name="/compare")
