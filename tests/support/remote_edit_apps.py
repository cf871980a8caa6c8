"""Real Gradio edit apps shaped like popular image-editing Spaces, added as tabs to the Space-shaped
apps (remote_space_apps.py), served by Gradio 6 and 5 alike. Gradio, Pillow and numpy only.

- ``/kontext``: the FLUX.1 Kontext [dev] Space's ``infer(input_image, prompt, seed=42,
  randomize_seed=False, guidance_scale=2.5, steps=28)``: the picture input labelled "Upload the
  image for editing" (``gr.Image(type="pil")``), no strength; it returns ``(image, seed,
  gr.Button(visible=True))`` (its "Reuse this image" button). The "edit" swaps the red and
  blue channels of the picture, at twice its size (the Space makes about 1 megapixel).
- ``/qwen_edit``: the Qwen-Image-Edit Space's ``infer(image, prompt, seed, randomize_seed,
  true_guidance_scale, num_inference_steps, rewrite_prompt)``, returning ``(image, seed)``.
- ``/img2img``: an SD img2img app: ``(prompt, negative_prompt, init_image, strength,
  guidance_scale, num_inference_steps, seed)``, a generator yielding each step's picture: the
  input blended towards flat green by ``strength * step / steps``, at the input's size.

Each run logs ``edit size=WxH strength=S`` (the picture it received) to ``<tag>.log``.
"""

from __future__ import annotations

import random
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image

MAX_SEED = int(np.iinfo(np.int32).max)
HOOKS: dict[str, Any] = {}
"""The serving script's ``log``, ``tag_of`` and ``wait_at_gate`` (its module is ``__main__``,
with its own state folder), given to ``edit_tabs``."""


def _log(prompt: str, image: PIL.Image.Image | None, strength: float | None = None) -> None:
    size = "none" if image is None else f"{image.size[0]}x{image.size[1]}"
    HOOKS["log"](HOOKS["tag_of"](prompt), f"edit size={size} strength={strength}")


def swapped(image: PIL.Image.Image, scale: int = 1) -> PIL.Image.Image:
    red, green, blue = image.convert("RGB").split()
    out = PIL.Image.merge("RGB", (blue, green, red))
    return out.resize((out.width * scale, out.height * scale)) if scale != 1 else out


def kontext(input_image, prompt, seed=42, randomize_seed=False, guidance_scale=2.5, steps=28):
    if randomize_seed:
        seed = random.randint(0, MAX_SEED)
    _log(prompt, input_image)
    if input_image is None:
        raise gr.Error("Upload an image to edit.")
    return swapped(input_image, scale=2), int(seed), gr.Button(visible=True)


def qwen_edit(
    image, prompt, seed, randomize_seed, true_guidance_scale, num_inference_steps, rewrite_prompt
):
    if randomize_seed:
        seed = random.randint(0, MAX_SEED)
    _log(prompt, image)
    return swapped(image), int(seed)


def img2img(prompt, negative_prompt, init_image, strength, guidance_scale, steps, seed):
    _log(prompt, init_image, strength)
    source = np.asarray(init_image.convert("RGB"), dtype=np.float32)
    target = np.zeros_like(source)
    target[..., 1] = 200.0
    steps = int(steps)
    for step in range(1, steps + 1):
        HOOKS["wait_at_gate"](HOOKS["tag_of"](prompt), step)
        weight = float(strength) * step / steps
        yield PIL.Image.fromarray(((1 - weight) * source + weight * target).astype(np.uint8))


def edit_tabs(**hooks: Any) -> None:
    """The edit apps' tabs, inside the caller's Blocks; ``hooks`` are ``log``, ``tag_of`` and
    ``wait_at_gate``."""
    HOOKS.update(hooks)
    with gr.Tab("Kontext"):
        input_image = gr.Image(label="Upload the image for editing", type="pil")
        prompt = gr.Text(label="Prompt", show_label=False, placeholder="Enter your prompt")
        run_button = gr.Button("Run")
        result = gr.Image(label="Result", show_label=False, interactive=False)
        seed = gr.Slider(label="Seed", minimum=0, maximum=MAX_SEED, step=1, value=0)
        randomize_seed = gr.Checkbox(label="Randomize seed", value=True)
        guidance_scale = gr.Slider(
            label="Guidance Scale", minimum=1, maximum=10, step=0.1, value=2.5
        )
        steps = gr.Slider(label="Steps", minimum=1, maximum=30, value=28, step=1)
        reuse_button = gr.Button("Reuse this image", visible=False)
        gr.on(
            triggers=[run_button.click, prompt.submit],
            fn=kontext,
            inputs=[input_image, prompt, seed, randomize_seed, guidance_scale, steps],
            outputs=[result, seed, reuse_button],
            api_name="kontext",
        )
    with gr.Tab("Qwen-Image-Edit"):
        inputs = [
            gr.Image(label="Input Image", show_label=False, type="pil"),
            gr.Text(label="Prompt", show_label=False),
            gr.Slider(label="Seed", minimum=0, maximum=MAX_SEED, step=1, value=0),
            gr.Checkbox(label="Randomize seed", value=True),
            gr.Slider(label="True guidance scale", minimum=1.0, maximum=10.0, step=0.1, value=4),
            gr.Slider(label="Number of inference steps", minimum=1, maximum=50, step=1, value=50),
            gr.Checkbox(label="Rewrite prompt", value=True),
        ]
        outputs = [gr.Image(label="Result", show_label=False), gr.Slider(label="Seed")]
        gr.Button("Edit!").click(qwen_edit, inputs, outputs, api_name="qwen_edit")
    with gr.Tab("img2img"):
        inputs = [
            gr.Text(label="Prompt"),
            gr.Text(label="Negative prompt", value=""),
            gr.Image(label="Init image", type="pil"),
            gr.Slider(label="Strength", minimum=0, maximum=1, step=0.01, value=0.75),
            gr.Slider(label="Guidance scale", minimum=0, maximum=20, step=0.5, value=7.5),
            gr.Slider(label="Steps", minimum=1, maximum=50, step=1, value=20),
            gr.Slider(label="Seed", minimum=0, maximum=MAX_SEED, step=1, value=0),
        ]
        gr.Button("Run").click(img2img, inputs, gr.Image(label="Result"), api_name="img2img")
