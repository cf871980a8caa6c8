"""The gradio-diffusion-preview demo: type a prompt, pick a backend and model, watch every step.

Runs offline on a fresh machine: its default model is the bundled shapes model, a tiny
Stable-Diffusion-structured pipeline trained in the repository (training/train_shapes.py) that
draws a shape in a colour on a background, 64x64 ("a red circle on a blue background"). It is
safe to put on the public internet: visitors choose among the models of its catalogue
(demo/catalogue.toml, or the file named by DIFFUSION_PREVIEW_CATALOGUE), within its limits,
waiting their turn fairly.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import gradio as gr

from gradio_diffusion_preview import get_registry
from gradio_diffusion_preview.compare import MIN_MODELS
from gradio_diffusion_preview.compare_tab import compare_tab
from gradio_diffusion_preview.generate_tab import generate_tab, image_entries
from gradio_diffusion_preview.policy import Policy

INTRO = """# gradio-diffusion-preview
Watch text-to-image generation happen: a preview of **every denoising step**, progress, ETA,
Stop, and the final images to download. **Generate** with one model, **Edit** a picture (image
to image), **Compare** one prompt and seed on 2 to 4 models side by side, or **Compare edits**
of one picture. Backends are plugins; pick one below.
"""
DEFAULT_PROMPT = "an orange heart on a green background"
# Prompts the bundled model draws right (colour, background and shape) for four seeds out of
# four, checked with its judge: it draws circles, squares, triangles and hearts; stars worst.
EXAMPLES = [
    "an orange heart on a green background",
    "a yellow triangle on a red background",
    "a red square on a blue background",
    "a green circle on a purple background",
    "a white heart on a yellow background",
]
# The bundled model remakes a picture described by the prompt (not by an instruction); a heart
# is a shape it draws over the sample's red circle at any seed (its stars are its weakest).
EDIT_PROMPT = "a blue heart on a white background"
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
    if os.environ.get("SPACE_ID"):  # on a Space the platform's proxy is the only direct peer
        policy.trusted_proxies = ("private",)
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


def edit_sample():
    """The Edit tab's first picture: a red circle on a white background, as the bundled model
    draws its shapes (the prompt then says what it should become)."""
    from gradio_diffusion_preview.bundled.shapes.draw import draw_scene
    from gradio_diffusion_preview.bundled.shapes.grammar import Scene

    return draw_scene(Scene("circle", "red", "white", size=36, centre=(32.0, 32.0)))


def build_demo(model: str | None = None, policy: Policy | None = None) -> gr.Blocks:
    """The demo Blocks under ``policy`` (by default the demo's catalogue; ``model`` replaces
    its tiny model): the library's Generate, Edit (where a model takes an image), Compare and
    Compare edits (where two or more do) tabs."""
    policy = policy or demo_policy(model)
    with gr.Blocks(title="gradio-diffusion-preview") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Generate"):
            generate_tab(policy, prompt=DEFAULT_PROMPT, examples=EXAMPLES)
        if image_entries(policy):  # the Generate tab with an input image (img2img)
            with gr.Tab("Edit"):
                generate_tab(policy, prompt=EDIT_PROMPT, edit=True, image=edit_sample())
        with gr.Tab("Compare"):  # one prompt and seed, 2 to 4 models side by side
            compare_tab(policy, prompt=DEFAULT_PROMPT)
        if len(image_entries(policy)) >= MIN_MODELS:  # one picture edited by 2 to 4 models
            with gr.Tab("Compare edits"):
                compare_tab(policy, prompt=EDIT_PROMPT, edit=True, image=edit_sample())
    return demo


# `python demo/app.py`, `gradio demo/app.py` (whose reloader looks for `demo`) and a Space.
demo = build_demo()

if __name__ == "__main__":
    demo.queue(max_size=64).launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
