"""The page around the library's Generate and Compare tabs in the demo (issue 21), in Chromium:
text that meets WCAG AA contrast in light and dark (Gradio's help text, slider ranges, the
selected tab's label, the primary button), a dropdown that closes when Tab moves on, the paired
controls even on a phone and at 1366 px, the full-size viewer covering a phone's screen, and an
empty prompt answered in one short sentence."""

from __future__ import annotations

import pytest
from browser_helpers import TIMEOUT_MS, open_viewer, probe, set_number, wait_view
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LIBRARY_TEXT = ".diffusion-ui, .tab-wrapper"
"""The tabs' own blocks and the tab labels above them (not Gradio's footer, which no app
built on the tabs draws)."""


def open_advanced(page, tab: str = ".diffusion-generate") -> None:
    """Open the "Advanced settings" of the tab whose outer block matches ``tab``."""
    page.locator(tab).get_by_role("button", name="Advanced settings").click()
    expect(page.locator(f"{tab} input[type=range]").first).to_be_visible()


def low_contrast(page) -> list[dict]:
    found = page.evaluate(probe("contrast"), LIBRARY_TEXT)
    assert len(found) > 20, found  # the probe saw the tabs' texts
    return [item for item in found if item["ratio"] < item["required"]]


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_text_of_the_generate_and_compare_tabs_meets_wcag_aa(open_page, demo_url, dark):
    page = open_page(demo_url, dark=dark, width=1366)
    open_advanced(page)
    seen = {"generate": low_contrast(page)}
    page.get_by_role("tab", name="Compare", exact=True).click()
    open_advanced(page, ".diffusion-compare")
    seen["compare"] = low_contrast(page)
    assert seen == {"generate": [], "compare": []}, seen
    assert not page.errors


DROPDOWNS = """() => Object.fromEntries([...document.querySelectorAll('input[role=combobox]')]
  .filter(i => i.getClientRects().length)
  .map(i => [i.getAttribute('aria-label'),
             !!document.getElementById(i.getAttribute('aria-controls'))]))"""
"""Each visible dropdown: whether its list of options is on the page."""


def test_a_dropdown_closes_when_tab_moves_the_focus_on(open_page, demo_url):
    page = open_page(demo_url, width=1366)
    open_advanced(page)
    sampler = page.get_by_label("Sampler", exact=True)
    sampler.focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option", name="Euler a")).to_be_visible()
    page.keyboard.press("Tab")  # on to the next dropdown, which opens as it takes the focus
    expect(page.get_by_label("Step previews", exact=True)).to_be_focused()
    expect(page.get_by_role("option", name="Euler a")).to_have_count(0)
    page.keyboard.press("Tab")  # and off it
    expect(page.get_by_label("Step previews", exact=True)).not_to_be_focused()
    page.wait_for_function(f"() => !Object.values(({DROPDOWNS})()).some(Boolean)")
    assert page.evaluate(DROPDOWNS) == {"Model": False, "Sampler": False, "Step previews": False}
    expect(sampler).to_have_value("Default")  # Tab chose nothing
    assert not page.errors


PAIRS = """() => [...document.querySelectorAll('.diffusion-generate .diffusion-pair')]
  .filter(row => row.getClientRects().length)
  .map(row => {
    const halves = [...row.querySelectorAll(
        ':scope > * > .block, :scope > .column, :scope > .block')]
      .filter(el => el.getClientRects().length);
    return halves.map(el => {
      const box = el.getBoundingClientRect();
      // a slider's number box (a gr.Number's box sits under its label and help by design)
      const number = el.querySelector('input[type=range]')
        && el.querySelector('input[type=number]');
      const n = number ? number.getBoundingClientRect() : null;
      return {label: el.querySelector('label, .label-text, [data-testid=block-info]')?.innerText
                ?.split('\\n')[0],
              x: Math.round(box.x), y: Math.round(box.y), width: Math.round(box.width),
              right: Math.round(box.right), number_dy: n ? Math.round(n.y - box.y) : null};
    });
  })"""
"""The two halves of each visible pair of the Generate tab's settings: their boxes, and where
each one's number box sits below its top."""


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_paired_settings_sit_evenly_side_by_side(open_page, demo_url, size):
    viewport = PHONE if size == "phone" else {"width": 1366, "height": 900}
    page = open_page(demo_url, **viewport)
    open_advanced(page)
    pairs = page.evaluate(PAIRS)
    assert len(pairs) >= 3, pairs
    for pair in pairs:
        assert len(pair) == 2, pair  # two halves, side by side
        left, right = pair
        assert abs(left["y"] - right["y"]) <= 2 and left["right"] <= right["x"], pair
        assert abs(left["width"] - right["width"]) <= 4, pair  # even halves
        assert right["right"] <= viewport["width"], pair
        if left["number_dy"] is not None and right["number_dy"] is not None:
            # two sliders' number boxes on the same line: neither header wraps on its own
            assert left["number_dy"] == right["number_dy"], pair
    assert not page.errors


def test_on_a_phone_the_viewer_covers_the_screen_and_its_toolbar_keeps_one_row(open_page, demo_url):
    page = open_page(demo_url, **PHONE)
    set_number(page, "Steps", 2)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    viewer = open_viewer(page, 0)
    groups = page.get_by_test_id("viewer-toolbar").evaluate(probe("toolbar_rows"))
    assert [(g["rows"], g["cut"]) for g in groups] == [(1, False)] * len(groups), groups
    box = viewer.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844), box
    background = viewer.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background in ("rgb(0, 0, 0)", "rgba(0, 0, 0, 1)"), background  # no page behind
    page.keyboard.press("Escape")
    assert not page.errors


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_empty_prompt_is_answered_in_one_short_sentence(open_page, demo_url, size):
    page = open_page(demo_url, **(PHONE if size == "phone" else {}))
    page.get_by_label("Prompt", exact=True).first.fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_view(page, "error")
    expect(page.get_by_role("alert")).to_contain_text("Type a prompt first.")
    expect(page.get_by_test_id("error-reason")).to_have_text(": Check the settings")
    for owners in ("Invalid request", "prompt=", "diffusers", "Fix:"):
        assert owners not in page.inner_text("body"), owners
    assert not page.errors
