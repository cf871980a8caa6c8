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
    accepted_fields,
    get_registry,
    raise_failed,
    stream,
)
from gradio_diffusion_preview.compare_tab import compare_tab
from gradio_diffusion_preview.policy import Policy, catalogue_choices
from gradio_diffusion_preview.request import MAX_SEED, InvalidRequest
from gradio_diffusion_preview.request import random_seed as draw_seed

INTRO = """# gradio-diffusion-preview
Watch text-to-image generation happen: a preview of **every denoising step**, progress, ETA,
Stop, and the final images to download. **Generate** with one model, or **Compare** one prompt
and seed on 2 to 4 models side by side. Backends are plugins; pick one below.
"""
DEFAULT_PROMPT = "an orange heart on a green background"
# Prompts the bundled model draws right (colour, background and shape) for four seeds out of
# four, checked with its judge: it draws circles, squares, triangles and hearts; stars worst.
EXAMPLES = [
    ["an orange heart on a green background"],
    ["a yellow triangle on a red background"],
    ["a red square on a blue background"],
    ["a green circle on a purple background"],
    ["a white heart on a yellow background"],
]
CATALOGUE = Path(__file__).with_name("catalogue.toml")
TINY_PREFIX = "tiny:"


def default_model() -> str:
    """The bundled shapes model (shipped in the package: nothing to build or download)."""
    from gradio_diffusion_preview.bundled.shapes import model_dir

    return str(model_dir())


def demo_policy(model: str | None = None) -> Policy:
    """The demo's policy from its catalogue file (the library resolves ``bundled:shapes``, the
    shipped model). ``tiny:<kind>`` (a random-weight test pipeline built on first use) is the
    demo's own; ``model`` (or DIFFUSION_PREVIEW_DEMO_MODEL) replaces both."""
    path = os.environ.get("DIFFUSION_PREVIEW_CATALOGUE") or CATALOGUE
    policy = Policy.from_file(path)
    model = model or os.environ.get("DIFFUSION_PREVIEW_DEMO_MODEL")
    for index, entry in enumerate(policy.catalogue):
        if entry.model == default_model():
            real = model or entry.model
        elif entry.model and entry.model.startswith(TINY_PREFIX):
            real = model or _tiny_model(entry.model.removeprefix(TINY_PREFIX))
        else:
            continue
        policy.catalogue[index] = replace(entry, model=real)
    return on_zerogpu_hardware(policy)


MACHINE_OPTIONS = ("device", "dtype")
"""Entry options that pin a run to this machine's device; on ZeroGPU the GPU worker chooses."""


def on_zerogpu_hardware(policy: Policy) -> Policy:
    """On ZeroGPU hardware (Spaces sets ``SPACES_ZERO_GPU``), the catalogue's local entries run
    their generation in ``@spaces.GPU`` workers (``on_zerogpu``, docs/deploy-zerogpu.md): each
    local backend gets a ``<id>-zerogpu`` twin with its models loaded now, in the app's process,
    its slots, and its entries without the CPU device and dtype. Elsewhere: ``policy`` as is."""
    if not os.environ.get("SPACES_ZERO_GPU"):
        return policy
    import spaces  # noqa: F401  (ZeroGPU's package, on every ZeroGPU Space; before torch)

    from gradio_diffusion_preview import on_zerogpu

    backends = get_registry().backends()
    twins: dict[str, str] = {}
    for index, entry in enumerate(policy.catalogue):
        backend = backends.get(entry.backend)
        if backend is None or backend.location != "local":
            continue
        if entry.backend not in twins:
            models = sorted(
                {e.model for e in policy.catalogue if e.backend == entry.backend and e.model}
            )
            twins[entry.backend] = on_zerogpu(entry.backend, preload=models).id
            if entry.backend in policy.slots:
                policy.slots[twins[entry.backend]] = policy.slots[entry.backend]
        options = {k: v for k, v in entry.options.items() if k not in MACHINE_OPTIONS}
        policy.catalogue[index] = replace(entry, backend=twins[entry.backend], options=options)
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
    """Stream one run into the DiffusionPreview, sending only what the chosen model takes.

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
        "guidance": guidance,
        "negative_prompt": negative_prompt,
    }
    if isinstance(backend_id, str):  # the chosen model's own: hidden controls send values too
        fields = accepted_fields(backend_id, fields, policy=policy, registry=registry)
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
    backends = get_registry().backends()
    choices = [
        (backends[backend_id].display_name if backend_id in backends else backend_id, backend_id)
        for backend_id in policy.backends()
    ]
    first = policy.catalogue[0]
    with gr.Blocks(title="gradio-diffusion-preview") as generate_tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPT, lines=2)
                button = gr.Button("Generate", variant="primary")
                backend = gr.Dropdown(choices, value=first.backend, label="Backend")
                model_box = gr.Dropdown(
                    catalogue_choices(policy, first.backend), value=first.id, label="Model"
                )
                about = gr.Markdown(model_note(policy, first.backend, first.id))
                initial = control_settings(policy, first.backend, first.id)
                negative = gr.Textbox(label="Negative prompt", value="", **initial["negative"])
                with gr.Row():
                    steps = gr.Slider(label="Steps", **initial["steps"])
                    guidance = gr.Slider(label="Guidance", **initial["guidance"])
                with gr.Row():
                    width = gr.Slider(label="Width", **initial["width"])
                    height = gr.Slider(label="Height", **initial["height"])
                with gr.Row():
                    with gr.Column(min_width=160):
                        seed = gr.Number(
                            value=-1,
                            precision=0,
                            minimum=-1,
                            maximum=MAX_SEED,
                            label="Seed",
                            info="The latest run's seed, to make it again.",
                        )
                        random_seed = gr.Checkbox(value=True, label="Random seed each run")
                    num_images = gr.Slider(label="Images", **initial["num_images"])
                with gr.Row():
                    sampler = gr.Dropdown(label="Sampler", **initial["sampler"])
                    previewer = gr.Dropdown(label="Step previews", **initial["previewer"])
                # The request's backend options, made from the dropdowns above: the API's
                # options_json (an API client sends its own JSON object here).
                options = gr.Textbox(
                    value=_options_json(initial["sampler"]["value"], initial["previewer"]["value"]),
                    visible=False,
                    label="Options (JSON)",
                )
            with gr.Column(scale=2):
                preview = DiffusionPreview(
                    label="Generation", height=512, keep_images_for=policy.image_max_age
                )
                gr.Examples(EXAMPLES, inputs=[prompt], label="Prompts the bundled model draws")
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
            "concurrency_limit": policy.concurrency_limit,
            "concurrency_id": "generate",
        }
        # The seed is settled before the run and written into the seed box, so the box always
        # shows the seed of the picture being made (a cancelled or failed run's too).
        seed_first = {
            "fn": pick_seed,
            "inputs": [seed, random_seed, backend],
            "outputs": seed,
            "queue": False,
            "show_progress": "hidden",
            "api_name": False,
        }
        run = button.click(**seed_first).then(**run_event, api_name="generate")
        prompt.submit(**seed_first).then(**run_event, api_name=False)
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
        # A seed the visitor reuses or types is meant to be kept: random seeds turn off.
        keep_seed = {"fn": lambda: False, "outputs": random_seed, "api_name": False}
        preview.reuse(**keep_seed, queue=False, show_progress="hidden")
        seed.input(**keep_seed, queue=False, show_progress="hidden")
        backend.change(
            partial(_models_for, policy), backend, model_box, api_name=False, queue=False
        )
        model_controls = [steps, guidance, width, height, num_images, negative, sampler]
        model_box.change(
            partial(_controls_for, policy),
            [backend, model_box],
            [*model_controls, previewer, about],
            api_name=False,
            queue=False,
        )
        for dropdown in (sampler, previewer):
            dropdown.change(
                _options_json, [sampler, previewer], options, api_name=False, queue=False
            )
    with gr.Blocks(title="gradio-diffusion-preview") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Generate"):
            generate_tab.render()
        with gr.Tab("Compare"):  # one prompt and seed, 2 to 4 models side by side
            compare_tab(policy, prompt=DEFAULT_PROMPT)
    return demo


def pick_seed(
    seed: float | None, random_each_run: bool, backend_id: str | None, request: gr.Request
):
    """The seed the next run uses: a new random one when asked (or when the box holds none),
    within the seeds the chosen backend accepts (a remote app's seed slider may stop at
    2**31 - 1), else the box's own. While this session's previous run is still going, the box
    is left alone: that run keeps its seed, and the new click is refused by the one-run rule."""
    from gradio_diffusion_preview.run_handles import runs_of_session

    if request is not None and request.session_hash and runs_of_session(request.session_hash):
        return gr.skip()
    if random_each_run or seed is None or seed < 0:
        backends = get_registry().backends()
        chosen = backends.get(backend_id) if isinstance(backend_id, str) else None
        # the capabilities known now (never a network call): a remote app's own once asked
        return draw_seed(chosen.capabilities.seed_range) if chosen else draw_seed()
    return gr.skip()


def model_note(policy: Policy, backend_id: str, model_id: str | None) -> str:
    """What the chosen model is (its catalogue description) and, when it cannot run here,
    why and what the server's owner can do."""
    entry = _entry(policy, backend_id, model_id)
    parts = [entry.description] if entry and entry.description else []
    note = availability_note(backend_id)
    return "\n\n".join([*parts, note] if note else parts)


def _entry(policy: Policy, backend_id: str, model_id: str | None):
    try:
        return policy.entry(backend_id, model_id)
    except InvalidRequest:
        return None


def _models_for(policy: Policy, backend_id: str):
    """The chosen backend's catalogue models (the model box's change then sets the rest)."""
    models = catalogue_choices(policy, backend_id)
    return gr.Dropdown(choices=models, value=models[0][1] if models else None)


def _controls_for(policy: Policy, backend_id: str, model_id: str | None):
    """Every control set for the chosen model (see ``control_settings``), and its note."""
    settings = control_settings(policy, backend_id, model_id)
    if settings is None:
        return [gr.skip()] * len(CONTROLS) + [model_note(policy, backend_id, model_id)]
    kinds = {"negative": gr.Textbox, "sampler": gr.Dropdown, "previewer": gr.Dropdown}
    updates = [kinds.get(name, gr.Slider)(**settings[name]) for name in CONTROLS]
    return [*updates, model_note(policy, backend_id, model_id)]


CONTROLS = (
    "steps",
    "guidance",
    "width",
    "height",
    "num_images",
    "negative",
    "sampler",
    "previewer",
)


def control_settings(policy: Policy, backend_id: str, model_id: str | None) -> dict | None:
    """The settings of each control for the chosen model: the ranges and defaults of its
    steps, guidance, size and batch held to the demo's limits (so no setting on offer is
    refused), the negative prompt only where it is used, and the sampler and previewer as
    dropdowns where this model offers a choice. None for a model not in the catalogue."""
    registry = get_registry()
    entry = _entry(policy, backend_id, model_id)
    if entry is None or entry.backend not in registry.backends():
        return None
    backend = registry.get(entry.backend)
    caps = policy.controls(entry, backend)
    choices = policy.option_choices(entry, backend)
    low, high = caps.steps_range
    g_low, g_high = caps.guidance_range

    def size(side: int) -> dict:
        return {**_range(caps.min_size, caps.max_size, caps.size_multiple), "value": side}

    return {
        "steps": {**_range(low, high, 1), "value": caps.default_steps},
        "guidance": {
            **_range(g_low, g_high, 0.5),
            "value": caps.default_guidance,
            "visible": caps.guidance,
        },
        "width": size(caps.default_size[0]),
        "height": size(caps.default_size[1]),
        "num_images": {**_range(1, caps.max_batch, 1), "value": 1},
        "negative": {"visible": caps.negative_prompt},
        "sampler": _choice(choices.get("scheduler")),
        "previewer": _choice(choices.get("previewer"), caps.option_labels.get("previewer")),
    }


def _range(low: float, high: float, step: float) -> dict:
    """A slider's range; a model that allows one value only gets a fixed slider (Gradio's
    sliders need a minimum below the maximum)."""
    if low < high:
        return {"minimum": low, "maximum": high, "step": step, "interactive": True}
    return {"minimum": high - step, "maximum": high, "step": step, "interactive": False}


def _choice(values: tuple[str, ...] | None, labels: dict[str, str] | None = None) -> dict:
    """A dropdown offering ``values`` (the first preselected), each shown by its label where
    the backend's options give one (``Capabilities.option_labels``); hidden when there is none."""
    if not values:
        return {"choices": [], "value": None, "visible": False}
    shown = [(labels.get(value, value), value) for value in values] if labels else list(values)
    return {"choices": shown, "value": values[0], "visible": True}


def _options_json(sampler: str | None, previewer: str | None) -> str:
    """The request's backend options from the dropdowns (only those shown and set)."""
    chosen = {"scheduler": sampler, "previewer": previewer}
    return json.dumps({name: value for name, value in chosen.items() if value})


def availability_note(backend_id: str) -> str:
    """Why the backend cannot run here (no token, offline, not configured), shown as soon as it
    is chosen so nobody waits for a run that must fail; empty when it can run. The backend's
    own message says what the server's owner can do about it and holds no secret."""
    availability = get_registry().get(backend_id).availability()
    if availability.state == "usable":
        return ""
    state = availability.state.replace("_", " ")
    return f"**Not available on this server ({state}):** {availability.message}"


# `python demo/app.py`, `gradio demo/app.py` (whose reloader looks for `demo`) and a Space.
demo = build_demo()

if __name__ == "__main__":
    demo.queue(max_size=64).launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
