"""The apps the benchmarks load, each served on loopback in its own process:

- ``ours``: a ``DiffusionPreview`` fed by ``stream()`` from a backend that yields a preview per
  step (the default ``min_interval``, JPEG data URLs, no files); ``ours-async``: the same from
  an ``async def`` handler through ``astream()``;
- ``image-webp`` / ``image-png`` / ``image-jpeg``: baseline (a), plain Gradio, a generator
  yielding each step's picture as a 512 px PIL image into ``gr.Image(format=...)``;
- ``comfy``: baseline (b), ComfyUI-style, each step saved as a 512 px JPEG at quality 95 and
  yielded into ``gr.Image`` as a file;
- ``a1111``: baseline (c), AUTOMATIC1111-style, the click runs the whole generation and keeps a
  preview every 10 steps, which the page fetches as a PNG data URL by polling
  ``POST /internal/progress`` once a second (``id_live_preview`` skips an unchanged preview);
- ``bundled``: not paced but computed: the bundled shapes model on the real diffusers backend
  (its own CPU thread choice), warmed up by one run before it serves (``cpu_threads.py``).

Every app takes one text input, ``"<token> <steps per second> <steps>"``, runs the steps on an
absolute schedule and, when the run ends, appends each step's wall-clock time to the step log
(``--log``, JSON lines ``{"token", "step", "t"}``): the benchmarks measure from these times.

    python bench/apps.py ours --port 7861 --log /tmp/steps.jsonl
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
import PIL.Image  # noqa: E402
from frames import DISPLAY_SIDE, preview_frame, upscaled  # noqa: E402

KINDS = ("ours", "ours-async", "image-webp", "image-png", "image-jpeg", "comfy", "a1111", "bundled")
BUNDLED_PROMPT = "a red circle on a blue background"
A1111_EVERY = 10


def parse(text: str) -> tuple[str, float, int]:
    """``(token, steps per second, steps)`` from the app's text input."""
    token, rate, steps = text.split()
    return token, float(rate), int(steps)


class StepLog:
    """Each run's step times, appended to a JSON-lines file when the run ends."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, token: str, stamps: list[tuple[int, float]]) -> None:
        lines = "".join(json.dumps({"token": token, "step": s, "t": t}) + "\n" for s, t in stamps)
        with self.lock, open(self.path, "a") as file:
            file.write(lines)


def paced(rate: float, steps: int, stamps: list[tuple[int, float]]):
    """Yields step numbers on an absolute schedule of ``rate`` steps per second, recording when
    each step happened (the moment a step callback would fire)."""
    start = time.perf_counter()
    for step in range(1, steps + 1):
        delay = start + step / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stamps.append((step, time.time()))
        yield step


def ours_app(log: StepLog, asynchronous: bool = False) -> gr.Blocks:
    from gradio_diffusion_preview import (
        Backend,
        Capabilities,
        DiffusionPreview,
        Finished,
        ModelInfo,
        Started,
        Step,
        astream,
        stream,
    )

    class PacedBackend(Backend):
        """A preview per step on a fixed schedule, standing in for a model's step callback."""

        id = "bench-paced"
        display_name = "Paced (benchmark)"
        location = "local"
        capabilities = Capabilities(
            steps_range=(1, 1000), guidance=False, negative_prompt=False, finish_early=True
        )

        def __init__(self, token: str, rate: float) -> None:
            self.token, self.rate = token, rate

        def models(self):
            return [ModelInfo(id="paced", name="Paced frames")]

        def generate(self, request, control):
            total = request.steps
            yield Started(total, "paced", [0], request.width, request.height)
            stamps: list[tuple[int, float]] = []
            try:
                for step in paced(self.rate, total, stamps):
                    if control.cancelled:
                        return
                    yield Step(step, total, preview_frame(step, total, self.token))
                yield Finished([PIL.Image.fromarray(preview_frame(total, total, self.token))], [0])
            finally:
                log.write(self.token, stamps)

    def request(text: str) -> dict:
        token, rate, steps = parse(text)
        return dict(
            backend=PacedBackend(token, rate),
            prompt=token,
            model="paced",
            steps=steps,
            width=DISPLAY_SIDE,
            height=DISPLAY_SIDE,
            seed=0,
        )

    def generate(text: str):
        yield from stream(**request(text))

    async def generate_async(text: str):
        async for state in astream(**request(text)):
            yield state

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        out = DiffusionPreview(label="Preview", elem_id="out")
        button.click(generate_async if asynchronous else generate, text, out)
    return demo


def bundled_app(log: StepLog) -> gr.Blocks:
    """The bundled shapes model through ``stream()`` and the diffusers backend, 64 px; the
    text's rate is ignored (the model sets the pace), and the seed is the token's: each click
    makes a picture of its own, so its paint shows even when a busy machine coalesces the run's
    previews away (the same seed gave the same final image at the same file URL: no change in
    the page to see). Step times come from the backend's step listener, on the generation
    thread, the moment each step's callback runs; step 0 is when the event's handler started."""
    from gradio_diffusion_preview import DiffusionPreview, stream
    from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
    from gradio_diffusion_preview.bundled.shapes import model_dir

    backend = DiffusersBackend()
    model = str(model_dir())
    running: dict[str, list[tuple[int, float]]] = {}  # one run at a time (the bench's clicks)

    def record(step: int, total: int) -> None:
        for stamps in running.values():
            stamps.append((step, time.time()))

    backend.step_listeners.append(record)

    def run(steps: int, seed: int = 1):
        return stream(
            backend, prompt=BUNDLED_PROMPT, model=model, steps=steps, seed=seed, width=64, height=64
        )

    *_, last = run(2)  # loads the pipeline before the first visitor
    if last.status != "done":
        raise SystemExit(f"the bundled model did not run: {last.message}")

    def generate(text: str):
        token, _, steps = parse(text)
        running[token] = stamps = [(0, time.time())]  # "step 0": the handler starts
        try:
            yield from run(steps, zlib.crc32(token.encode()))
        finally:
            running.pop(token, None)
            log.write(token, stamps)

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        out = DiffusionPreview(label="Preview", elem_id="out")
        button.click(generate, text, out)
    return demo


def image_app(log: StepLog, fmt: str) -> gr.Blocks:
    def generate(text: str):
        token, rate, steps = parse(text)
        stamps: list[tuple[int, float]] = []
        try:
            for step in paced(rate, steps, stamps):
                yield upscaled(preview_frame(step, steps, token))
        finally:
            log.write(token, stamps)

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        out = gr.Image(label="Preview", format=fmt, elem_id="out")
        button.click(generate, text, out)
    return demo


def comfy_app(log: StepLog) -> gr.Blocks:
    folder = Path(tempfile.mkdtemp(prefix="gdp-bench-comfy-"))

    def generate(text: str):
        token, rate, steps = parse(text)
        stamps: list[tuple[int, float]] = []
        try:
            for step in paced(rate, steps, stamps):
                path = folder / f"{token}-{step}.jpg"
                upscaled(preview_frame(step, steps, token)).save(path, format="JPEG", quality=95)
                yield str(path)
        finally:
            log.write(token, stamps)

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        out = gr.Image(label="Preview", type="filepath", elem_id="out")
        button.click(generate, text, out)
    return demo


class LivePreviews:
    """AUTOMATIC1111's shared state: the current preview of each run and its id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: dict[str, tuple[int, PIL.Image.Image, float]] = {}

    def set(self, token: str, step: int, image: PIL.Image.Image, progress: float) -> None:
        with self.lock:
            self.current[token] = (step, image, progress)

    def get(self, token: str) -> tuple[int, PIL.Image.Image, float] | None:
        with self.lock:
            return self.current.get(token)


def a1111_app(log: StepLog):
    from fastapi import Body

    live = LivePreviews()

    def generate(text: str):
        token, rate, steps = parse(text)
        stamps: list[tuple[int, float]] = []
        try:
            for step in paced(rate, steps, stamps):
                if step % A1111_EVERY == 0:
                    live.set(token, step, upscaled(preview_frame(step, steps, token)), step / steps)
            return upscaled(preview_frame(steps, steps, token))
        finally:
            log.write(token, stamps)

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        out = gr.Image(label="Result", elem_id="out")
        button.click(generate, text, out)

    def progress(id_task: str = Body(...), id_live_preview: int = Body(-1)) -> dict:
        """Like A1111's ``/internal/progress``: a PNG data URL only when the preview changed."""
        current = live.get(id_task)
        if current is None:
            return {"active": False, "progress": 0.0, "live_preview": None, "id_live_preview": -1}
        step, image, fraction = current
        preview = None
        if step != id_live_preview:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            preview = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        return {
            "active": True,
            "progress": fraction,
            "live_preview": preview,
            "id_live_preview": step,
        }

    return demo, [("/internal/progress", progress)]


def build(kind: str, log: StepLog):
    """``(blocks, extra routes)`` of the app ``kind``."""
    if kind in ("ours", "ours-async"):
        return ours_app(log, asynchronous=kind == "ours-async"), []
    if kind.startswith("image-"):
        return image_app(log, kind.split("-", 1)[1]), []
    if kind == "comfy":
        return comfy_app(log), []
    if kind == "a1111":
        return a1111_app(log)
    if kind == "bundled":
        return bundled_app(log), []
    raise SystemExit(f"unknown app {kind!r}; one of {', '.join(KINDS)}")


def main() -> None:
    import uvicorn
    from fastapi import FastAPI

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    demo, routes = build(args.kind, StepLog(args.log))
    demo.queue(default_concurrency_limit=None)
    app = FastAPI()
    for path, handler in routes:
        app.post(path)(handler)
    app = gr.mount_gradio_app(app, demo, path="")
    # Keep idle connections open through a long run under load, as a browser's are (uvicorn's
    # default of 5 s closes them under clients that are about to reuse them).
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_keep_alive=120)


if __name__ == "__main__":
    main()
