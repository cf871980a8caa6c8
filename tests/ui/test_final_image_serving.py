"""Final image files are served whole while the app keeps sending the state that holds them and
retention removes old ones: every read gets the complete file or, once retention removed it, a
refusal (Gradio answers 403 for a cache file that is gone); never a short body ("Response
content shorter than Content-Length" in the server log).

The demo's Compare tab yields the tuple of every panel's latest state on each frame, so a
finished panel's state (with its final images) is postprocessed again on every frame of the
others; each time the component saved its images to the same content-addressed path, and
Gradio's writer truncates a file before writing it, so a browser fetching that image then got
fewer bytes than the Content-Length it had been promised.
"""

from __future__ import annotations

import io
import logging
import threading
import time

import gradio as gr
import httpx
import numpy as np
import PIL.Image
from gradio_client import Client

from gradio_diffusion_preview import DiffusionPreview
from gradio_diffusion_preview.state import RunState

FRAMES = 60
FRAMES_PER_IMAGE = 15
SIDE = 384
KEEP_SECONDS = 1.0


def noise_image(seed: int) -> PIL.Image.Image:
    """Incompressible pixels: a large PNG, so writing it takes a while."""
    pixels = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return PIL.Image.fromarray(pixels)


def compare_like_app() -> gr.Blocks:
    """Two panels as the Compare tab has them: the first finished (a new final image every
    ``FRAMES_PER_IMAGE`` frames), the second still running; every frame sends both."""
    finals = [noise_image(k) for k in range(FRAMES // FRAMES_PER_IMAGE)]

    def run():
        for frame in range(FRAMES):
            done = RunState(status="done", step=4, total_steps=4, images=[finals[frame // 15]])
            running = RunState(status="running", step=frame, total_steps=FRAMES)
            yield done, running
            time.sleep(0.02)

    with gr.Blocks() as demo:
        panels = [DiffusionPreview(keep_images_for=KEEP_SECONDS) for _ in range(2)]
        gr.Button().click(run, None, panels, api_name="compare")
    return demo


def is_image(data: bytes) -> bool:
    try:
        PIL.Image.open(io.BytesIO(data)).load()
    except (OSError, SyntaxError, ValueError):  # PIL's errors for a truncated or empty file
        return False
    return True


class ServerErrors(logging.Handler):
    """Collects what the server logs at ERROR and above (uvicorn's "Exception in ASGI
    application" carries the short-body RuntimeError)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self.records.append(text)


def test_finals_are_served_whole_under_repeated_saves_concurrent_reads_and_retention(serve):
    errors = ServerErrors()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "gradio")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        url = serve(compare_like_app())
        client = Client(url, verbose=False, download_files=False)
        job = client.submit(api_name="/compare")
        urls: list[str] = []
        results = {"whole": 0, "gone": 0, "short": [], "corrupt": [], "other": []}
        lock = threading.Lock()
        stop = threading.Event()

        def read_all() -> None:
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    with lock:
                        known = list(urls)
                    for image_url in known:
                        try:
                            response = http.get(image_url)
                        except httpx.HTTPError as error:  # a body cut short
                            with lock:
                                results["short"].append(f"{type(error).__name__}: {error}")
                            continue
                        with lock:
                            if response.status_code in (403, 404):  # removed by retention
                                results["gone"] += 1
                            elif response.status_code != 200:
                                results["other"].append(response.status_code)
                            elif len(response.content) != int(response.headers["content-length"]):
                                results["short"].append(len(response.content))
                            elif not is_image(response.content):
                                results["corrupt"].append(len(response.content))
                            else:
                                results["whole"] += 1

        readers = [threading.Thread(target=read_all, daemon=True) for _ in range(4)]
        for reader in readers:
            reader.start()
        seen = 0
        while not job.done() or seen < len(job.outputs()):
            outputs = job.outputs()
            for output in outputs[seen:]:
                image_url = output[0]["images"][0]["url"]
                with lock:
                    if image_url not in urls:
                        urls.append(image_url)
            seen = len(outputs)
            time.sleep(0.01)
        job.result()
        stop.set()
        for reader in readers:
            reader.join(30)
        client.close()
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    assert len(urls) == FRAMES // FRAMES_PER_IMAGE, urls  # one file per final image
    assert results["short"] == results["corrupt"] == results["other"] == [], results
    assert results["whole"] > 0 and results["gone"] > 0, results  # read, and removed
    assert errors.records == [], errors.records  # no short body, no file gone mid-response
