"""In Chromium: a run of a service that has no seed and takes no number of steps (the
OpenAI-compatible images plugin of tests/support/service_plugins.py) shows no seed and no steps
in the page, and its downloaded PNG claims neither."""

from __future__ import annotations

import json

import gradio as gr
import PIL.Image
import pytest
from browser_helpers import TIMEOUT_MS, generate
from playwright.sync_api import expect
from service_plugins import OpenAIImagesBackend, openai_server

from gradio_diffusion_preview import DiffusionPreview, stream

pytestmark = pytest.mark.browser


@pytest.fixture
def service():
    server = openai_server()
    yield server
    server.close()


def test_a_seedless_stepless_runs_png_info_claims_no_seed_and_no_steps(
    open_page, serve, service, tmp_path
):
    backend = OpenAIImagesBackend(service.url)

    def run(prompt):
        yield from stream(backend, prompt=prompt, width=256, height=256)

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Preview")
        preview.attach_run(button.click(run, prompt, preview))

    page = open_page(serve(app))
    generate(page, "a red fox in the snow")
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    info = page.get_by_test_id("generation-info")
    expect(info).to_contain_text("a red fox in the snow")
    expect(page.get_by_test_id("info-model")).to_have_text("image-1")
    assert page.get_by_test_id("info-seed").count() == 0
    assert page.get_by_test_id("info-steps").count() == 0
    assert "Seed" not in info.inner_text() and "Steps" not in info.inner_text()

    with page.expect_download() as download_info:
        page.get_by_test_id("download-link").first.click()
    path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(path)
    with PIL.Image.open(path) as image:
        parameters = image.text["parameters"]
        settings = json.loads(image.text["gradio_diffusion_preview"])
    prompt_line, line = parameters.split("\n")
    assert prompt_line == "a red fox in the snow"
    assert line == "Size: 256x256, Model: image-1, Backend: openai-images", line
    assert "seed" not in settings and "steps" not in settings, settings
    assert service.calls == 1 and not page.errors
    page.close()
