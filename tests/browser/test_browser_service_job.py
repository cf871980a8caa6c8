"""In Chromium: a run of the Replicate-style prediction plugin (tests/support/service_plugins.py)
shows the service's job id linked to its page in the run's details, and its Stop, which the
plugin passes on to the service, says "Stopping…" until the service answers, then the answer:
a refused cancel in plain words (the job may still run). A batch of the OpenAI-style plugin
(one call per image) shows its first image while the service still makes the second."""

from __future__ import annotations

import gradio as gr
import pytest
from browser_helpers import TIMEOUT_MS, generate, view_of, wait_view
from playwright.sync_api import expect
from service_plugins import (
    OpenAIImagesBackend,
    PredictionBackend,
    openai_server,
    prediction_server,
)

from gradio_diffusion_preview import DiffusionPreview, stream

pytestmark = pytest.mark.browser


@pytest.fixture
def service():
    server = prediction_server()
    yield server
    server.cancel_gate.set()
    server.close()


def prediction_app(backend: PredictionBackend, steps: int) -> gr.Blocks:
    def run(prompt):
        yield from stream(backend, prompt=prompt, steps=steps, width=64, height=64)

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Preview")
        preview.attach_run(button.click(run, prompt, preview))
    return app


def test_the_services_job_id_links_to_its_page_in_the_details(open_page, serve, service):
    page = open_page(serve(prediction_app(PredictionBackend(service.url), steps=3)))
    generate(page, "a red fox")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    [job_id] = list(service.predictions)
    link = page.get_by_test_id("info-job")
    expect(link).to_have_text(job_id)
    expect(link).to_have_attribute("href", f"{service.url}/p/{job_id}")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert not page.errors
    page.close()


def test_a_cancel_the_service_refuses_says_stopping_then_that_the_job_may_still_run(
    open_page, serve, service
):
    service.refuse_cancels = True
    service.cancel_gate.clear()  # the service holds its answer until the page said Stopping…
    service.hold_at = 3  # and the job at its third line: a loaded machine could finish 52 polls
    # before the click on Stop
    backend = PredictionBackend(service.url, poll=0.05)
    page = open_page(serve(prediction_app(backend, steps=50)))
    generate(page, "a red fox")
    expect(page.get_by_test_id("info-job")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_view(page, "stopping")
    expect(page.get_by_test_id("status-message")).to_have_text("Stopping…")
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    service.cancel_gate.set()
    wait_view(page, "cancelled")
    message = page.get_by_test_id("status-message")
    expect(message).to_contain_text("Cancel was refused by the service: the job may still run.")
    assert service.cancelled == [] and not page.errors
    page.close()


def test_a_batchs_first_image_shows_while_the_others_are_still_made(open_page, serve):
    server = openai_server()
    server.hold_later.clear()  # the service answers the first call, holds the second
    try:
        backend = OpenAIImagesBackend(server.url)

        def run(prompt):
            yield from stream(backend, prompt=prompt, num_images=2, width=256, height=256)

        with gr.Blocks() as app:
            prompt = gr.Textbox(label="Prompt")
            button = gr.Button("Generate")
            preview = DiffusionPreview(label="Preview")
            preview.attach_run(button.click(run, prompt, preview))

        page = open_page(serve(app))
        generate(page, "a red fox")
        tiles = page.get_by_test_id("preview-image")
        expect(tiles).to_have_count(1, timeout=TIMEOUT_MS)  # the first image, as it arrived
        assert page.get_by_test_id("final-image").count() == 0
        assert view_of(page) != "done"
        server.hold_later.set()
        expect(page.get_by_test_id("final-image")).to_have_count(2, timeout=TIMEOUT_MS)
        assert server.calls == 2 and not page.errors
        page.close()
    finally:
        server.hold_later.set()
        server.close()
