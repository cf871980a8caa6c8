"""The demo's Compare edits tab in Chromium: its sample picture edited by two models side by side
(the bundled model and one of its samplers), each panel forming over the picture and ending with
a result at the picture's size whose PNG info records the strength."""

from __future__ import annotations

import io

import PIL.Image
import pytest
from browser_helpers import TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_sample_picture_is_edited_by_two_models_side_by_side(open_page, demo_url):
    page = open_page(demo_url, width=1200)
    page.get_by_role("tab", name="Compare edits", exact=True).click()
    root = page.locator(".diffusion-compare-edit")
    root.get_by_role("button", name="Compare", exact=True).wait_for(timeout=TIMEOUT_MS)
    panels = root.locator(".diffusion-compare-edit-panels [data-testid='diffusion-preview']")
    visible = panels.filter(visible=True)
    expect(visible).to_have_count(3, timeout=TIMEOUT_MS)  # the first three that take a picture
    root.get_by_role("button", name="Compare", exact=True).click()
    sizes = set()
    for index in range(3):
        panel = visible.nth(index)
        expect(panel).to_have_attribute("data-view", "done", timeout=TIMEOUT_MS)
        expect(panel.get_by_test_id("input-frame")).to_have_count(0)  # the result replaced it
        link = panel.get_by_test_id("download-link").first
        response = page.request.get(link.get_attribute("href"))
        assert response.status == 200
        with PIL.Image.open(io.BytesIO(response.body())) as result:
            sizes.add(result.size)
            assert "Denoising strength: " in result.text["parameters"]
    assert sizes == {(64, 64)}, sizes  # the sample picture's size
    assert not page.errors
