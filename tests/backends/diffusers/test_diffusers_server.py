"""A client that goes away stops the diffusers pipeline: a real Gradio server on loopback, a real
(tiny) pipeline, and gradio_client's ``job.cancel()``."""

from __future__ import annotations

import time

import gradio as gr
import pytest
from gradio_client import Client
from waiting import wait_for

import gradio_diffusion_preview as gdp

pytestmark = pytest.mark.slow
STEPS = 150  # the most the backend allows


def test_cancelling_the_client_job_stops_the_pipeline(serve, tiny_sd15):
    backend = gdp.get_backend("diffusers")
    iterations: list[int] = []

    def count(iteration: int, total: int) -> None:
        iterations.append(iteration)

    backend.step_listeners.append(count)

    def generate(prompt: str, steps: float):
        for state in gdp.stream(
            "diffusers",
            model=tiny_sd15,
            prompt=prompt,
            steps=int(steps),
            width=64,
            height=64,
            seed=5,
            min_interval=0.0,
        ):
            yield {
                "status": state.status,
                "step": state.step,
                "total": state.total_steps,
                "has_preview": state.preview is not None,
                "message": state.message,
            }

    with gr.Blocks() as demo:
        prompt = gr.Textbox()
        steps = gr.Number()
        output = gr.JSON()
        gr.Button("Generate").click(generate, [prompt, steps], output, api_name="generate")

    try:
        client = Client(serve(demo), verbose=False)
        job = client.submit("a lighthouse", STEPS, api_name="/generate")
        wait_for(lambda: len(job.outputs()) >= 4 or job.done(), 120, "a few streamed updates")
        assert not job.done(), f"the run ended early: {job.status()}, {job.outputs()}"
        assert any(update["has_preview"] for update in job.outputs())
        job.cancel()
        cancelled_at = len(iterations)
        wait_for(lambda: backend.active_runs == 0, 30, "the pipeline to stop")
        assert len(iterations) < STEPS / 2, f"ran {len(iterations)} of {STEPS} steps"
        stopped_after = len(iterations) - cancelled_at
        assert stopped_after <= 20, f"{stopped_after} steps ran after the cancel"

        # The server and the backend still serve the next request.
        final = client.predict("a harbour", 3, api_name="/generate")
        assert final["status"] == "done" and final["step"] == 3, final
    finally:
        backend.step_listeners.remove(count)


@pytest.mark.browser
def test_closing_the_browser_tab_stops_the_pipeline(serve, browser, tiny_sd15):
    """A real disconnect: the page that started the run closes, Gradio closes the handler's
    generator, and the pipeline stops long before its last step."""
    backend = gdp.get_backend("diffusers")
    iterations: list[int] = []

    def count_and_pace(iteration: int, total: int) -> None:
        iterations.append(iteration)
        time.sleep(0.05)  # on the generation thread: the run lasts long enough to close mid-run

    backend.step_listeners.append(count_and_pace)

    def generate(prompt: str):
        yield from gdp.stream(
            "diffusers",
            model=tiny_sd15,
            prompt=prompt,
            steps=STEPS,
            width=64,
            height=64,
            seed=5,
            min_interval=0.0,
        )

    with gr.Blocks() as demo:
        prompt = gr.Textbox(value="a lighthouse", label="Prompt")
        preview = gdp.DiffusionPreview()
        gr.Button("Generate").click(generate, prompt, preview)
    try:
        page = browser.new_page()
        page.goto(serve(demo))
        page.get_by_role("button", name="Generate", exact=True).click()
        page.wait_for_function(
            """() => {
                const text = document.querySelector('[data-testid=progress-text]')?.textContent;
                const match = /step (\\d+)/.exec(text || "");
                return match && Number(match[1]) >= 3;
            }""",
            timeout=60_000,
        )
        page.close()
        closed_at = len(iterations)
        wait_for(lambda: backend.active_runs == 0, 30, "the pipeline to stop after the tab closed")
        assert len(iterations) < STEPS / 2, f"ran {len(iterations)} of {STEPS} steps"
        assert len(iterations) - closed_at <= 20, "the pipeline ran on after the disconnect"
    finally:
        backend.step_listeners.clear()
