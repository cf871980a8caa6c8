"""In Chromium: a run that reports steps but sends no previews keeps the waiting card on the
stage (not an empty grey stage) until its final image arrives, while the bar counts steps."""

from __future__ import annotations

import pytest
from browser_helpers import TIMEOUT_MS, backend_app, generate, progress_steps
from playwright.sync_api import expect
from toy_backends import Gate

from gradio_diffusion_preview import Backend, Capabilities, Finished, ModelInfo, Started, Step

pytestmark = pytest.mark.browser


class StepsOnly(Backend):
    """Counts its steps, each let through by the test (``gate``), and sends no previews; a grey
    final image."""

    id, display_name, location = "steps-only", "Steps only", "remote"
    capabilities = Capabilities(step_previews=False, max_batch=1)

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def models(self):
        return [ModelInfo("counter")]

    def generate(self, request, control):
        import PIL.Image

        size = (request.width, request.height)
        yield Started(request.steps, request.model, [request.seed], *size)
        for step in range(1, request.steps + 1):
            if not self.gate.wait(control):
                return
            yield Step(step, request.steps)
        yield Finished([PIL.Image.new("RGB", size, "grey")], [request.seed])


def test_steps_without_previews_keep_the_waiting_card_until_the_final_image(open_page, serve):
    gate = Gate()
    page = open_page(serve(backend_app(StepsOnly(gate), width=64, height=64)))
    gate.release(2)  # the run holds at step 2 until the page has been checked
    generate(page)
    expect(page.get_by_test_id("progress-text")).to_contain_text("step 2 /", timeout=TIMEOUT_MS)
    assert progress_steps(page)[0] == 2
    expect(page.get_by_test_id("waiting-status")).to_be_visible()
    gate.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("waiting-status")).to_have_count(0)
    assert not page.errors
    page.close()
