"""Real Gradio apps shaped like popular text-to-image Spaces, served by whichever Gradio runs
this script: this project's venv (Gradio 6) or the Gradio 5 venv that ``make test`` makes
(``.venv-gradio5``). It imports Gradio, Pillow and numpy only, never this package.

One Blocks holds every app, each under its own API name, as the Spaces write them:

- ``/infer``: the FLUX live-preview Spaces' ``infer(prompt, seed, randomize_seed, width,
  height, guidance_scale, num_inference_steps)``, yielding ``(image, seed)`` every step; the
  seed slider is capped at 2**31 - 1 and "Randomize seed" is on by default.
- ``/gallery``: an SD-style app with sliders and a negative prompt, returning a gallery of
  ``num_images`` images and the one seed it used.
- ``/fake_diffusion``: Gradio's own ``demo/fake_diffusion``: a ``steps`` slider, no prompt,
  yielding an image per step.
- ``/refuse``: an app that raises ``gr.Error`` for a prompt.
- ``/seeded``: ``infer(prompt, seed)`` with a seed slider capped at 2**31 - 1, nothing more.
- ``/kontext``, ``/qwen_edit``, ``/img2img``: edit Spaces (remote_edit_apps.py).

Images are flat colours a test can read back: red is 20 times the step (250 for the final
image), green and blue the seed's two low bytes. What each run did goes to ``--state``: the
file ``<tag>.log`` (the tag is the prompt's first word, or "fake_diffusion") gets
``start seed=N``, ``step K`` and ``closed`` lines; ``cancels.log`` a line per job Gradio's
``/cancel`` has cancelled. A step waits while ``<tag>.gate`` exists
and holds fewer permits than its number (``open`` lets every step through), so a test holds a
run where it wants it. Run as::

    python tests/support/remote_space_apps.py --port 7999 --state /tmp/state
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
from idle_queues import relax_idle_polling
from remote_edit_apps import edit_tabs

MAX_SEED = int(np.iinfo(np.int32).max)
STATE = Path(os.environ.get("SPACE_APPS_STATE", "."))
REFUSED = "forbidden"
REFUSAL = "This Space refuses that prompt: try another."


def image(step: int, seed: int, width: int = 64, height: int = 64) -> PIL.Image.Image:
    colour = (min(250, step * 20), seed % 256, (seed // 256) % 256)
    return PIL.Image.new("RGB", (max(8, int(width) // 8), max(8, int(height) // 8)), colour)


def tag_of(prompt: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in prompt or "").split()
    return words[0] if words else "untagged"


def log(tag: str, line: str) -> None:
    with (STATE / f"{tag}.log").open("a") as file:
        file.write(line + "\n")


def wait_at_gate(tag: str, step: int) -> None:
    """Hold step ``step`` while the tag's gate holds fewer permits (at most 60 s)."""
    gate = STATE / f"{tag}.gate"
    deadline = time.monotonic() + 60
    while gate.exists() and time.monotonic() < deadline:
        text = gate.read_text().strip()
        if text == "open" or (text.isdigit() and int(text) >= step):
            return
        time.sleep(0.01)


def denoise(tag: str, steps: int, seed: int, width: int, height: int):
    """The steps of one run, logged and gated; yields each step's image. The ``closed`` line
    is written when Gradio closes the generator (a cancelled run) or it ends."""
    log(tag, f"start seed={seed}")
    try:
        for step in range(1, steps + 1):
            wait_at_gate(tag, step)
            log(tag, f"step {step}")
            yield image(step, seed, width, height)
    finally:
        log(tag, "closed")


def infer(
    prompt,
    seed=42,
    randomize_seed=False,
    width=1024,
    height=1024,
    guidance_scale=3.5,
    num_inference_steps=28,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008 (how Gradio asks for a tracker)
):
    """The FLUX live-preview Spaces' handler: every step's image with the seed it used."""
    if randomize_seed:
        seed = random.randint(0, MAX_SEED)
    seed = int(seed)
    steps = int(num_inference_steps)
    frames = denoise(tag_of(prompt), steps, seed, width, height)
    for step, frame in enumerate(frames, start=1):
        if step < steps:
            yield frame, seed
    yield image(13, seed, width, height), seed  # the final image: red 250 (clipped)
    # Gradio sends the final yield as an update, then the completion once the generator ends:
    # a test may hold that moment at the gate (its permits below steps + 1).
    log(tag_of(prompt), "final sent")
    wait_at_gate(tag_of(prompt), steps + 1)


def gallery(
    prompt,
    negative_prompt,
    seed,
    randomize_seed,
    width,
    height,
    guidance_scale,
    num_inference_steps,
    num_images,
):
    """An SD-style app: ``num_images`` images from one seed, returned with that seed."""
    if randomize_seed:
        seed = random.randint(0, MAX_SEED)
    seed = int(seed)
    for _ in denoise(tag_of(prompt), int(num_inference_steps), seed, width, height):
        pass
    return [image(13, seed + i * 17, width, height) for i in range(int(num_images))], seed


def fake_diffusion(steps):
    """Gradio's demo/fake_diffusion: no prompt, an image per step."""
    steps = int(steps)
    frames = denoise("fake_diffusion", steps, 0, 64, 64)
    for step, frame in enumerate(frames, start=1):
        yield frame if step < steps else image(13, 0)


def refuse(prompt, seed):
    if REFUSED in prompt:
        raise gr.Error(REFUSAL)
    return image(13, int(seed))


def seeded(prompt, seed):
    seed = int(seed)
    log(tag_of(prompt), f"start seed={seed}")
    return image(13, seed)


def build() -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tab("FLUX"):
            prompt = gr.Text(label="Prompt", show_label=False, placeholder="Enter your prompt")
            run_button = gr.Button("Run")
            result = gr.Image(label="Result", show_label=False)
            seed = gr.Slider(label="Seed", minimum=0, maximum=MAX_SEED, step=1, value=0)
            randomize_seed = gr.Checkbox(label="Randomize seed", value=True)
            width = gr.Slider(label="Width", minimum=256, maximum=2048, step=32, value=1024)
            height = gr.Slider(label="Height", minimum=256, maximum=2048, step=32, value=1024)
            guidance_scale = gr.Slider(
                label="Guidance Scale", minimum=1, maximum=15, step=0.1, value=3.5
            )
            num_inference_steps = gr.Slider(
                label="Number of inference steps", minimum=1, maximum=50, step=1, value=28
            )
            gr.on(
                triggers=[run_button.click, prompt.submit],
                fn=infer,
                inputs=[
                    prompt,
                    seed,
                    randomize_seed,
                    width,
                    height,
                    guidance_scale,
                    num_inference_steps,
                ],
                outputs=[result, seed],
            )
        with gr.Tab("Gallery"):
            inputs = [
                gr.Text(label="Prompt"),
                gr.Text(label="Negative prompt", value=""),
                gr.Slider(label="Seed", minimum=0, maximum=MAX_SEED, step=1, value=0),
                gr.Checkbox(label="Randomize seed", value=True),
                gr.Slider(label="Width", minimum=256, maximum=1024, step=32, value=512),
                gr.Slider(label="Height", minimum=256, maximum=1024, step=32, value=512),
                gr.Slider(label="Guidance scale", minimum=0, maximum=10, step=0.1, value=5),
                gr.Slider(label="Number of inference steps", minimum=1, maximum=40, value=4),
                gr.Slider(label="Number of images", minimum=1, maximum=4, step=1, value=1),
            ]
            outputs = [gr.Gallery(label="Result"), gr.Number(label="Seed used")]
            gr.Button("Run").click(gallery, inputs, outputs, api_name="gallery")
        with gr.Tab("Fake diffusion"):
            steps = gr.Slider(1, 10, 3, step=1, label="steps")
            gr.Button("Run").click(fake_diffusion, steps, gr.Image(), api_name="fake_diffusion")
        with gr.Tab("Refuse"):
            inputs = [gr.Text(label="Prompt"), gr.Slider(0, MAX_SEED, step=1, label="Seed")]
            gr.Button("Run").click(refuse, inputs, gr.Image(), api_name="refuse")
        with gr.Tab("Seeded"):
            inputs = [gr.Text(label="Prompt"), gr.Slider(0, MAX_SEED, step=1, label="Seed")]
            gr.Button("Run").click(seeded, inputs, gr.Image(), api_name="seeded")
        # /kontext, /qwen_edit, /img2img: remote_edit_apps.py
        edit_tabs(log=log, tag_of=tag_of, wait_at_gate=wait_at_gate)
    return demo


def log_cancels() -> None:
    """Log ``cancelled`` to ``cancels.log`` each time Gradio's ``/cancel`` route has cancelled a
    job's task. The route then waits for the job's step to end (a run held at a gate: until the
    gate opens), so a test opens the gate once this line is there, instead of waiting for the
    cancel's answer. Gradio 4.44, 5 and 6 all cancel through ``gradio.routes.cancel_tasks``."""
    import gradio.routes

    cancel_tasks = gradio.routes.cancel_tasks

    async def cancel_tasks_and_log(task_ids):
        cancelling = asyncio.ensure_future(cancel_tasks(task_ids))
        await asyncio.sleep(0)  # cancel_tasks ran to its first await: the tasks are cancelled
        with (STATE / "cancels.log").open("a") as file:
            file.write("cancelled\n")
        return await cancelling

    gradio.routes.cancel_tasks = cancel_tasks_and_log


def main() -> None:
    global STATE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    STATE = args.state
    STATE.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    relax_idle_polling()
    log_cancels()
    build().queue(default_concurrency_limit=4).launch(
        server_name="127.0.0.1", server_port=args.port, quiet=True
    )


if __name__ == "__main__":
    main()
