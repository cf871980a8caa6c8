"""Small real Gradio apps that play the remote end of the remote Gradio backend's tests.

Each is an ordinary Blocks: ``preview_app`` streams a real backend into a ``DiffusionPreview``
under api_name "generate" (as this project's demo does on another machine); ``image_app`` is the
common text-to-image Space, a generator that returns a PIL image after a delay. Run as a script,
this module serves ``preview_app`` around a ``CountingBackend`` on a given port, so a test can
kill the process mid-run:

    python tests/support/remote_gradio_apps.py --port 7999 --step-seconds 0.2
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # toy_backends, when run as a script

from idle_queues import relax_idle_polling  # noqa: E402

from gradio_diffusion_preview import Backend, DiffusionPreview, stream  # noqa: E402


def preview_app(
    backend: Backend,
    *,
    headers: list[dict[str, str]] | None = None,
    concurrency_limit: int | None = 2,
    model_choices: list[str] | None = None,
) -> gr.Blocks:
    """A remote app whose /generate streams ``backend`` into a DiffusionPreview; every call's
    request headers are appended to ``headers`` when given."""

    def generate(
        prompt: str,
        negative_prompt: str,
        model: str,
        steps: float,
        guidance: float,
        seed: float,
        width: float,
        height: float,
        num_images: float,
        request: gr.Request,
    ):
        if headers is not None:
            headers.append(dict(request.headers))
        fields = {
            "prompt": prompt,
            "model": model or None,
            "steps": int(steps),
            "seed": int(seed),
            "width": int(width),
            "height": int(height),
            "num_images": int(num_images),
        }
        if backend.capabilities.negative_prompt and negative_prompt:
            fields["negative_prompt"] = negative_prompt
        if backend.capabilities.guidance:
            fields["guidance"] = float(guidance)
        yield from stream(backend, **fields)

    choices = model_choices or [m.id for m in backend.list_models()] or [""]
    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        negative = gr.Textbox(label="Negative prompt", value="")
        model = gr.Dropdown(choices, value=choices[0], label="Model")
        steps = gr.Slider(1, 200, value=8, step=1, label="Steps")
        guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance")
        seed = gr.Number(value=0, precision=0, label="Seed")
        width = gr.Slider(64, 512, value=64, step=64, label="Width")
        height = gr.Slider(64, 512, value=64, step=64, label="Height")
        num_images = gr.Slider(1, 4, value=1, step=1, label="Images")
        preview = DiffusionPreview(label="Generation")
        button = gr.Button("Generate")
        inputs = [prompt, negative, model, steps, guidance, seed, width, height, num_images]
        run = button.click(
            generate,
            inputs,
            preview,
            api_name="generate",
            concurrency_limit=concurrency_limit,
        )
        preview.attach_run(run, api_visibility="public")  # its own runs only
    return demo


PROGRESS = gr.Progress()
"""Gradio passes a tracker to a handler whose parameter defaults to a ``gr.Progress``."""


def red_image(width: int = 64, height: int = 64) -> PIL.Image.Image:
    return PIL.Image.new("RGB", (width, height), (200, 30, 30))


def image_app(
    delay: float = 0.3,
    *,
    concurrency_limit: int | None = 1,
    gallery: bool = False,
    seeded: bool = False,
    refuse: str | None = None,
    gate: threading.Event | None = None,
) -> gr.Blocks:
    """The common text-to-image Space: /infer(prompt, seed, width, height) returns an image
    (or a gallery of one) after ``delay`` seconds, reporting progress on the way. ``seeded``:
    the image's blue depends on the seed, as a model's output does; ``refuse``: the prompt
    that the app answers with its own error; ``gate``: each run first waits until it is set
    (at most 60 s), so a test holds a run where it wants it."""

    def infer(prompt: str, seed: float, width: float, height: float, progress=PROGRESS):
        if refuse is not None and prompt == refuse:
            raise gr.Error("This app refuses that prompt.")
        if gate is not None:
            gate.wait(60)
        for step in progress.tqdm(range(4), desc="Denoising", unit="steps"):
            time.sleep(delay / 4)
            if step == 1:
                yield None  # an intermediate value, as streaming Spaces send
        image = red_image(int(width), int(height))
        if seeded:
            image = PIL.Image.new("RGB", image.size, (200, 30, int(seed) * 37 % 256))
        yield [image] if gallery else image

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt")
        seed = gr.Slider(0, 2**31 - 1, value=0, step=1, label="Seed")
        width = gr.Slider(64, 1024, value=64, step=64, label="Width")
        height = gr.Slider(64, 1024, value=64, step=64, label="Height")
        output = gr.Gallery(label="Result") if gallery else gr.Image(label="Result")
        gr.Button("Run").click(
            infer,
            [prompt, seed, width, height],
            output,
            api_name="infer",
            concurrency_limit=concurrency_limit,
        )
    return demo


def hanging_app(
    release: threading.Event,
    entered: threading.Event | None = None,
    answered: threading.Event | None = None,
) -> gr.Blocks:
    """An image app whose /hang blocks until ``release`` is set (at most 30 s), deaf to any
    cancel, as a handler stuck in native code is. ``entered`` is set when the handler holds a
    job, ``answered`` once it has returned."""

    def hang(prompt: str):
        if entered is not None:
            entered.set()
        try:
            release.wait(30)
            return red_image()
        finally:
            if answered is not None:
                answered.set()

    with gr.Blocks() as demo:
        gr.Button().click(hang, gr.Textbox(label="Prompt"), gr.Image(), api_name="hang")
    return demo


def seeded_counting_backend(step_seconds: float = 0.0) -> Backend:
    """A ``CountingBackend`` whose final images depend on the seed, as a model's do."""
    from toy_backends import CountingBackend

    from gradio_diffusion_preview import Finished

    class SeededCountingBackend(CountingBackend):
        id = "seeded-counting"

        def generate(self, request, control):
            for event in super().generate(request, control):
                if isinstance(event, Finished):
                    images = [
                        PIL.Image.new(
                            "RGB",
                            image.size,
                            (seed % 256, (seed // 256) % 256, image.getpixel((0, 0))[0]),
                        )
                        for image, seed in zip(event.images, event.seeds, strict=True)
                    ]
                    event = Finished(images, event.seeds, event.metadata, event.early)
                yield event

    return SeededCountingBackend(step_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--step-seconds", type=float, default=0.2)
    parser.add_argument(
        "--models", default="", help="comma-separated model choices (default: the backend's)"
    )
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    relax_idle_polling()
    backend = seeded_counting_backend(args.step_seconds)
    choices = [m for m in args.models.split(",") if m] or None
    demo = preview_app(backend, model_choices=choices)
    demo.queue().launch(server_name="127.0.0.1", server_port=args.port, quiet=True)


if __name__ == "__main__":
    main()
