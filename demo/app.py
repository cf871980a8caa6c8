"""The gradio-diffusion-preview demo: type a prompt, pick a backend and model, watch every step.

Runs offline on a fresh machine: its default model is a tiny Stable-Diffusion-1.x-structured
pipeline with RANDOM weights that it builds locally, so it shows the mechanics (a preview of
every step, progress, cancel, download), not pretty pictures. Point "Model" at any local diffusers
folder or cached Hugging Face repo id for real images.
"""

from __future__ import annotations

import json
import os

import gradio as gr

from gradio_diffusion_preview import DiffusionPreview, RunState, get_registry, stream

DEFAULT_BACKEND = "diffusers"
INTRO = """# gradio-diffusion-preview
Watch text-to-image generation happen: a preview of **every denoising step**, progress, ETA,
Stop, and the final images to download. Backends are plugins; pick one below.
"""
RANDOM_WEIGHTS_NOTE = (
    "**Default model: a tiny pipeline with random weights**, built on this machine so the demo "
    "runs offline. It shows the streaming, not real pictures: name a local diffusers folder or a "
    "cached repo id in *Model* for real images."
)


def default_model() -> str:
    """The tiny random-weight SD 1.x pipeline, built on first use (a few seconds)."""
    from gradio_diffusion_preview.backends.diffusers.tiny import (
        build_tiny_pipeline,
        default_tiny_model_dir,
    )

    return str(build_tiny_pipeline("sd15", default_tiny_model_dir("sd15")))


def generate(
    backend_id,
    model,
    prompt,
    negative_prompt,
    steps,
    guidance,
    seed,
    width,
    height,
    num_images,
    options_json="{}",
):
    """Stream one run into the DiffusionPreview, sending only what the backend supports."""
    try:
        options = parse_options(options_json)
    except ValueError as error:
        yield RunState(status="error", backend=backend_id, message=str(error))
        return
    registry = get_registry()
    fields = {
        "prompt": prompt,
        "model": model or None,
        "steps": int(steps),
        "width": int(width),
        "height": int(height),
        "num_images": int(num_images),
        "seed": None if seed is None or seed < 0 else int(seed),
        "options": options,
    }
    if backend_id in registry.backends():
        caps = registry.get(backend_id).capabilities
        if caps.guidance:
            fields["guidance"] = float(guidance)
        if caps.negative_prompt and negative_prompt:
            fields["negative_prompt"] = negative_prompt
    yield from stream(backend_id, **fields)


def parse_options(text: str | None) -> dict:
    """The backend options typed as JSON; a ValueError names the problem and the fix."""
    if not text or not text.strip():
        return {}
    example = 'e.g. {"scheduler": "euler_a"}'
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Backend options are not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno}). Fix: write a JSON object, {example}."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"Backend options must be a JSON object, not {type(value).__name__}. "
            f"Fix: write name-value pairs in braces, {example}."
        )
    return value


def build_demo(model: str | None = None) -> gr.Blocks:
    """The demo Blocks; ``model`` overrides the default tiny model."""
    model = model or os.environ.get("DIFFUSION_PREVIEW_DEMO_MODEL") or default_model()
    backends = get_registry().backends()
    choices = [(backend.display_name, backend_id) for backend_id, backend in backends.items()]
    with gr.Blocks(title="gradio-diffusion-preview") as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                prompt = gr.Textbox(
                    label="Prompt", value="a red lighthouse on a cliff at dusk", lines=2
                )
                button = gr.Button("Generate", variant="primary")
                negative = gr.Textbox(label="Negative prompt", value="")
                backend = gr.Dropdown(choices, value=DEFAULT_BACKEND, label="Backend")
                model_box = gr.Dropdown(
                    [model], value=model, label="Model", allow_custom_value=True
                )
                with gr.Row():
                    steps = gr.Slider(1, 150, value=30, step=1, label="Steps")
                    guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance")
                with gr.Row():
                    width = gr.Slider(64, 1024, value=256, step=64, label="Width")
                    height = gr.Slider(64, 1024, value=256, step=64, label="Height")
                with gr.Row():
                    seed = gr.Number(value=-1, precision=0, label="Seed", info="-1: random")
                    num_images = gr.Slider(1, 4, value=1, step=1, label="Images")
                with gr.Accordion("Backend options", open=False):
                    options = gr.Code(
                        value="{}",
                        language="json",
                        label="Options (JSON)",
                        lines=3,
                    )
                    gr.Markdown(
                        'Backend-specific settings, e.g. `{"scheduler": "euler_a"}` or '
                        '`{"previewer": "taesd"}` for *Local diffusers*. '
                        "`python -m gradio_diffusion_preview plugins` lists them all."
                    )
                gr.Markdown(RANDOM_WEIGHTS_NOTE)
            with gr.Column(scale=2):
                preview = DiffusionPreview(label="Generation", height=512)
        inputs = [
            backend,
            model_box,
            prompt,
            negative,
            steps,
            guidance,
            seed,
            width,
            height,
            num_images,
            options,
        ]
        run = button.click(generate, inputs, preview, api_name="generate")
        prompt.submit(generate, inputs, preview, api_name=False)
        preview.attach_run(run)
        preview.attach_reuse(
            prompt=prompt,
            negative_prompt=negative,
            seed=seed,
            steps=steps,
            guidance=guidance,
            width=width,
            height=height,
        )
        backend.change(_controls_for, backend, [model_box, guidance, negative], api_name=False)
    return demo


def _controls_for(backend_id: str):
    """The chosen backend's models, and only the controls it supports."""
    backend = get_registry().get(backend_id)
    try:
        models = [m.id for m in backend.models()]
    except Exception:  # listing may need a network; the user can still type a model
        models = []
    default = backend.default_model() if models else None
    caps = backend.capabilities
    return (
        gr.Dropdown(choices=models, value=default),
        gr.Slider(visible=caps.guidance),
        gr.Textbox(visible=caps.negative_prompt),
    )


if __name__ == "__main__":
    build_demo().queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    )
