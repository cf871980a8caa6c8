"""Issue #25, findings 4 to 6 over REST: a lone surrogate in the prompt is refused by the
central validation (not crashing Gradio's stream and the tokenizer), a fix hint gives the app's
range (its policy's caps) rather than the model's, and deeply nested options JSON gets a plain
refusal with no traceback in the log."""

from __future__ import annotations

import json
import logging

import gradio as gr
import httpx
import pytest
from public_app import launched
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import DiffusionPreview, stream
from gradio_diffusion_preview.controls import parse_options
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy


@pytest.fixture(scope="module")
def app_url():
    policy = Policy(
        catalogue=[CatalogueEntry(id="flat", backend="counting", model="flat")],
        limits=Limits(max_steps=50, max_images=2),
    )
    registry = registry_with(CountingBackend())

    def generate(prompt, steps, num_images):
        yield from stream(
            "counting",
            prompt=prompt,
            model="flat",
            steps=steps,
            num_images=num_images,
            policy=policy,
            registry=registry,
        )

    with gr.Blocks() as app:
        prompt, steps, images = gr.Textbox(), gr.Number(), gr.Number()
        preview = DiffusionPreview()
        run = gr.Button().click(
            generate, [prompt, steps, images], preview, api_name="generate", preprocess=False
        )
        preview.attach_run(run)
    with launched(app) as url:
        yield url


def rest_call(url: str, raw_body: str) -> str:
    """POST the raw JSON body to /call/generate and read the result stream to its end."""
    with httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post(
            "/gradio_api/call/generate",
            content=raw_body.encode(),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        return http.get(f"/gradio_api/call/generate/{answer.json()['event_id']}").text


def test_a_lone_surrogate_in_the_prompt_is_refused_plainly(app_url, capfd):
    raw = '{"data": ["red \\ud800 circle", 2, 1]}'  # as sent: a JSON escape, no UTF-8 for it
    assert "\ud800" in json.loads(raw)["data"][0]
    text = rest_call(app_url, raw)
    assert "event: error" in text, text
    assert "invalid character at position 5" in text and "lone surrogate" in text, text
    assert "Traceback" not in capfd.readouterr().err
    assert "event: complete" in rest_call(app_url, '{"data": ["red circle", 2, 1]}')


@pytest.mark.parametrize(
    ("steps", "images", "hint"),
    [(0, 1, "use a number of steps from 1 to 50."), (2, 0, "ask for 1 to 2 images.")],
)
def test_a_fix_hint_gives_the_apps_range(app_url, steps, images, hint):
    text = rest_call(app_url, json.dumps({"data": ["red circle", steps, images]}))
    assert "event: error" in text and hint in text, text


def test_deeply_nested_options_get_a_plain_refusal_and_no_traceback(caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match="nested too deeply") as refusal:
        parse_options("[" * 100_000 + "]" * 100_000)
    assert refusal.value.__cause__ is None and refusal.value.__suppress_context__
    assert not [record for record in caplog.records if record.exc_info]
