"""In Chromium: a local app whose backend is the remote Gradio backend, pointed at a remote
DiffusionPreview app on loopback, shows the remote run's previews forming in the widget, step
by step, then the final image; Stop in the local widget stops the remote run."""

from __future__ import annotations

import time

import gradio as gr
import pytest
from browser_helpers import STEPS_RE, TIMEOUT_MS, generate, probe
from playwright.sync_api import expect
from remote_gradio_apps import preview_app
from remote_gradio_client import gradio_backend
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview, stream

pytestmark = pytest.mark.browser


def local_app(backend) -> gr.Blocks:
    def run(prompt: str):
        yield from stream(backend, prompt=prompt, steps=12, width=64, height=64)

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation")
        preview.attach_run(button.click(run, prompt, preview), api_visibility="public")
    return app


def test_the_remote_runs_previews_form_in_the_local_widget(open_page, serve, output_dir):
    # The remote's steps wait at a gate: the first three are let through one at a time, each
    # once the widget has painted the one before, then the rest at once.
    gate = Gate()
    counting = CountingBackend(gate=gate)
    backend = gradio_backend(serve(preview_app(counting)))
    page = open_page(serve(local_app(backend)))
    page.evaluate(probe("watch_previews"))
    gate.release(1)
    generate(page, "a red fox")
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=output_dir / "running.png", full_page=True)
    for step in (2, 3):
        gate.release(1)
        page.wait_for_function(
            f"window.__preview_watch.previews.length >= {step}", timeout=TIMEOUT_MS
        )
    gate.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)

    seen = page.evaluate("window.__preview_watch")
    assert seen["final_after"] >= 3, f"only {seen['final_after']} distinct previews painted"
    assert seen["broken"] == 0
    steps = [int(m[1]) for m in map(STEPS_RE.search, seen["steps"]) if m]
    assert len(set(steps)) >= 3 and steps == sorted(steps), steps
    assert counting.steps_run == 12
    assert not page.errors
    page.close()


def test_stop_in_the_local_widget_stops_the_remote_run(open_page, serve):
    # Stop crosses the browser, the local app and the remote app. The remote's steps wait at a
    # gate: one is let through, so the remote run is still going when Stop is pressed, and it
    # can only end by Stop reaching it; only then is the gate opened.
    gate = Gate()
    counting = CountingBackend(gate=gate)
    backend = gradio_backend(serve(preview_app(counting)))
    page = open_page(serve(local_app(backend)))
    gate.release(1)
    generate(page, "a red fox")
    page.get_by_test_id("preview-image").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Stop", exact=True).click()
    at_stop = counting.steps_run
    page.get_by_test_id("status-message").wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("status-message")).to_have_text("Cancelled")
    deadline = time.monotonic() + 60  # only catches a hang
    while counting.runs_ended == 0:
        assert time.monotonic() < deadline, "Stop never reached the remote run"
        page.wait_for_timeout(20)
    gate.open()  # a remote run still going would now run all its steps
    page.wait_for_timeout(200)
    assert counting.steps_run == at_stop == 1, (at_stop, counting.steps_run)  # it is over
    assert page.get_by_test_id("final-image").count() == 0
    assert not page.errors
    page.close()


@pytest.fixture(scope="module")
def flux_space(tmp_path_factory):
    """The FLUX-style streaming Space of tests/support/remote_space_apps.py, served by Gradio 6."""
    from remote_space_server import start_space_apps

    server = start_space_apps("gradio6", tmp_path_factory.mktemp("space-apps"))
    yield server
    server.stop()


def test_a_streaming_spaces_intermediate_images_paint_in_the_widget(open_page, serve, flux_space):
    # The Space yields an image per step; its steps wait at a gate, let through one at a time
    # once the widget shows the step before, so each image is seen painted (none lost in a
    # burst), then the final image.
    tag = flux_space.tag()
    backend = gradio_backend(flux_space.url, api_name="/infer")

    def run(prompt: str):
        yield from stream(backend, prompt=f"{tag} {prompt}", steps=6, width=256, height=256)

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation")
        preview.attach_run(button.click(run, prompt, preview), api_visibility="public")
    page = open_page(serve(app))
    page.evaluate(probe("watch_previews"))
    flux_space.hold(tag, 1)
    generate(page, "a red fox")
    for step in range(1, 6):
        page.wait_for_function(
            f"window.__preview_watch.previews.length >= {step}", timeout=TIMEOUT_MS
        )
        flux_space.hold(tag, step + 1)
    flux_space.open(tag)  # the app also holds its completion after the final yield
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    seen = page.evaluate("window.__preview_watch")
    assert seen["final_after"] == 5, seen["final_after"]  # steps 1-5 painted, each its own
    assert seen["broken"] == 0
    steps = [int(m[1]) for m in map(STEPS_RE.search, seen["steps"]) if m]
    assert steps and steps == sorted(steps) and max(steps) <= 6, steps
    assert flux_space.steps_run(tag) == 6
    assert not page.errors
    page.close()
