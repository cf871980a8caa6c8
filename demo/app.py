"""The gradio-diffusion-preview demo: type a prompt, pick a backend and model, watch every step.

Runs offline on a fresh machine: its default model is the bundled shapes model, a tiny
Stable-Diffusion-structured pipeline trained in the repository (training/train_shapes.py) that
draws a shape in a colour on a background, 64x64 ("a red circle on a blue background"). It is
safe to put on the public internet: visitors choose among the models of its catalogue
(demo/catalogue.toml, or the file named by DIFFUSION_PREVIEW_CATALOGUE), within its limits,
waiting their turn fairly.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import partial
from pathlib import Path

import gradio as gr

from gradio_diffusion_preview import (
    DiffusionPreview,
    RunState,
    get_registry,
    raise_failed,
    stream,
)
from gradio_diffusion_preview.compare_tab import compare_tab
from gradio_diffusion_preview.policy import Policy, catalogue_choices

INTRO = """# gradio-diffusion-preview
Watch text-to-image generation happen: a preview of **every denoising step**, progress, ETA,
Stop, and the final images to download. Backends are plugins; pick one below.
"""
DEFAULT_PROMPT = "a yellow star on a purple background"
DEFAULT_MODEL_NOTE = (
    "**Default model: the bundled shapes model** (64x64), trained in this repository on a "
    "shared CPU: it asks for a circle, square, triangle, star or heart in red, orange, yellow, "
    "green, blue, purple, white or black on a background of another of those colours. It gets "
    "the background and colours mostly right and the shape rarely (its model card has the "
    "figures). List real models in the demo's catalogue (demo/catalogue.toml) for real images."
)
CATALOGUE = Path(__file__).with_name("catalogue.toml")
TINY_PREFIX = "tiny:"
BUNDLED_SHAPES = "bundled:shapes"


def default_model() -> str:
    """The bundled shapes model (shipped in the package: nothing to build or download)."""
    from gradio_diffusion_preview.bundled.shapes import model_dir

    return str(model_dir())


def demo_policy(model: str | None = None) -> Policy:
    """The demo's policy from its catalogue file. Models the demo provides itself are resolved
    here: ``bundled:shapes`` (the shipped model) and ``tiny:<kind>`` (a random-weight test
    pipeline built on first use); ``model`` (or DIFFUSION_PREVIEW_DEMO_MODEL) replaces them."""
    path = os.environ.get("DIFFUSION_PREVIEW_CATALOGUE") or CATALOGUE
    policy = Policy.from_file(path)
    model = model or os.environ.get("DIFFUSION_PREVIEW_DEMO_MODEL")
    for index, entry in enumerate(policy.catalogue):
        if entry.model == BUNDLED_SHAPES:
            real = model or default_model()
        elif entry.model and entry.model.startswith(TINY_PREFIX):
            real = model or _tiny_model(entry.model.removeprefix(TINY_PREFIX))
        else:
            continue
        policy.catalogue[index] = replace(entry, model=real)
    return policy


def _tiny_model(kind: str) -> str:
    from gradio_diffusion_preview.backends.diffusers.tiny import (
        build_tiny_pipeline,
        default_tiny_model_dir,
    )

    return str(build_tiny_pipeline(kind, default_tiny_model_dir(kind)))


def generate(
    policy,
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
    """Stream one run into the DiffusionPreview, sending only what the backend supports.

    The values arrive as sent (the event does not preprocess them), so that every malformed
    one is refused by the request validation naming its field, and the policy checks them."""
    try:
        options = parse_options(options_json)
    except ValueError as error:
        refused = RunState(status="error", message=str(error), reason="invalid_request")
        yield refused
        raise_failed(refused)  # an API call ends as an error, like stream's refusals
        return
    registry = get_registry()
    fields = {
        "prompt": prompt,
        "model": model or None,
        "steps": steps,
        "width": width,
        "height": height,
        "num_images": num_images,
        "seed": None if seed is None or seed == -1 else seed,
        "options": options,
    }
    if isinstance(backend_id, str) and backend_id in registry.backends():
        caps = registry.get(backend_id).capabilities
        if caps.guidance:
            fields["guidance"] = guidance
        if caps.negative_prompt and negative_prompt:
            fields["negative_prompt"] = negative_prompt
    yield from stream(str(backend_id), policy=policy, **fields)


def parse_options(text: str | None) -> dict:
    """The backend options typed as JSON; a ValueError names the problem and the fix."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if not isinstance(text, str):
        raise ValueError(
            f"Backend options must be JSON text, not {type(text).__name__}. "
            'Fix: send a JSON object as text, e.g. "{}".'
        )
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


def build_demo(model: str | None = None, policy: Policy | None = None) -> gr.Blocks:
    """The demo Blocks under ``policy`` (by default the demo's catalogue; ``model`` replaces
    its tiny model)."""
    policy = policy or demo_policy(model)
    limits = policy.limits
    backends = get_registry().backends()
    choices = [
        (backends[backend_id].display_name if backend_id in backends else backend_id, backend_id)
        for backend_id in policy.backends()
    ]
    first = policy.catalogue[0]
    models = catalogue_choices(policy, first.backend)
    with gr.Blocks(title="gradio-diffusion-preview") as generate_tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPT, lines=2)
                button = gr.Button("Generate", variant="primary")
                negative = gr.Textbox(label="Negative prompt", value="")
                backend = gr.Dropdown(choices, value=first.backend, label="Backend")
                model_box = gr.Dropdown(models, value=first.id, label="Model")
                availability = gr.Markdown(availability_note(first.backend))
                with gr.Row():
                    steps = gr.Slider(
                        1, limits.max_steps, value=min(20, limits.max_steps), step=1, label="Steps"
                    )
                    guidance = gr.Slider(0, 30, value=7.5, step=0.5, label="Guidance")
                with gr.Row():
                    side = min(64, limits.max_side)
                    width = gr.Slider(64, limits.max_side, value=side, step=64, label="Width")
                    height = gr.Slider(64, limits.max_side, value=side, step=64, label="Height")
                with gr.Row():
                    seed = gr.Number(value=-1, precision=0, label="Seed", info="-1: random")
                    num_images = gr.Slider(1, limits.max_images, value=1, step=1, label="Images")
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
                gr.Markdown(DEFAULT_MODEL_NOTE)
            with gr.Column(scale=2):
                preview = DiffusionPreview(
                    label="Generation", height=512, keep_images_for=policy.image_max_age
                )
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
        # Our fair queue (see fair_queue) orders runs per backend and answers "busy" when full;
        # Gradio's concurrency only has to let every waiting run reach it.
        run_event = {
            "fn": partial(generate, policy),
            "inputs": inputs,
            "outputs": preview,
            "preprocess": False,
            "concurrency_limit": sum(
                policy.slots.get(b, 1) + policy.max_queue for b in policy.backends()
            ),
            "concurrency_id": "generate",
        }
        run = button.click(**run_event, api_name="generate")
        prompt.submit(**run_event, api_name=False)
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
        backend.change(
            partial(_controls_for, policy),
            backend,
            [model_box, guidance, negative, availability],
            api_name=False,
        )
    with gr.Blocks(title="gradio-diffusion-preview") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Generate"):
            generate_tab.render()
        with gr.Tab("Compare"):  # one prompt and seed, 2 to 4 models side by side
            compare_tab(policy, prompt=DEFAULT_PROMPT)
    return demo


def _controls_for(policy: Policy, backend_id: str):
    """The chosen backend's catalogue models, and only the controls it supports."""
    backend = get_registry().get(backend_id)
    models = catalogue_choices(policy, backend_id)
    caps = backend.capabilities
    return (
        gr.Dropdown(choices=models, value=models[0][1] if models else None),
        gr.Slider(visible=caps.guidance),
        gr.Textbox(visible=caps.negative_prompt),
        availability_note(backend_id),
    )


def availability_note(backend_id: str) -> str:
    """Why the backend cannot run here (no token, offline, not configured), shown as soon as it
    is chosen so nobody waits for a run that must fail; empty when it can run. The backend's
    own message says what the server's owner can do about it and holds no secret."""
    availability = get_registry().get(backend_id).availability()
    if availability.state == "usable":
        return ""
    state = availability.state.replace("_", " ")
    return f"**Not available on this server ({state}):** {availability.message}"


if __name__ == "__main__":
    build_demo().queue(max_size=64).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    )
