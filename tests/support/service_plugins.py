"""Two plugins for services that exist today, written from docs/plugins.md alone, each with a
loopback server that speaks its protocol:

- ``OpenAIImagesBackend``: an OpenAI-compatible ``POST /v1/images/generations`` endpoint. The
  service takes no seed and no number of steps, makes a fixed list of sizes per model and
  reports no progress: ``seed=False``, ``steps=False``, ``sizes``, ``step_events=False``. A
  batch is one call per image, and each image is sent (``ImageReady``) as its call returns.
- ``PredictionBackend``: a Replicate-style prediction API. ``POST /v1/predictions`` starts a
  prediction; the backend polls ``urls.get``, reads progress from the tqdm lines in its
  ``logs`` (the service's own count, which is not the request's steps: ``exact_steps=False``),
  fetches the output URLs and cancels by ``urls.cancel``, reporting the service's answer
  (``Cancelled``: stopped or refused). It reports the prediction's id and its
  page (``urls.web``), which the widget shows. The service takes one seed for the
  whole batch (``seed_per_image=False``) and sends no previews.

Both are honest: no invented seed, step or error reaches the widget or the PNG.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import PIL.Image

from gradio_diffusion_preview import (
    Availability,
    Backend,
    Cancelled,
    Capabilities,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ImageReady,
    ModelDefaults,
    ModelInfo,
    RunControl,
    Started,
    Status,
    Step,
)

SIZES = ((256, 256), (512, 512), (1024, 1024))
WIDE_SIZES = ((1024, 1024), (1792, 1024), (1024, 1792))
REFUSED_WORD = "forbidden"
"""A prompt holding this word is refused by both services' content filters."""


def png(image: PIL.Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def painted(prompt: str, width: int, height: int, seed: int | None) -> PIL.Image.Image:
    """The services' "model": a colour picked by the prompt, noise by the seed (or by
    nothing repeatable when there is none)."""
    rng = np.random.default_rng(seed)
    colour = np.frombuffer(prompt.encode()[:3].ljust(3, b"\x80"), dtype=np.uint8)
    pixels = np.clip(colour + rng.integers(-20, 20, (height, width, 3)), 0, 255)
    return PIL.Image.fromarray(pixels.astype(np.uint8))


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port; ``close()`` stops it."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def answer(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- an OpenAI-compatible images endpoint ---------------------------------------------------


class OpenAIImagesHandler(JsonHandler):
    """``GET /v1/models`` and ``POST /v1/images/generations`` (``b64_json`` answers)."""

    server: LoopbackServer

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self.answer(200, {"data": [{"id": "image-1"}, {"id": "image-wide"}]})
        else:
            self.answer(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if self.path != "/v1/images/generations":
            self.answer(404, {"error": {"message": "not found"}})
            return
        body = self.body()
        sizes = WIDE_SIZES if body.get("model") == "image-wide" else SIZES
        width, height = (int(side) for side in str(body.get("size", "")).split("x"))
        if (width, height) not in sizes:
            self.answer(400, {"error": {"message": f"size {body['size']} is not supported"}})
            return
        if REFUSED_WORD in body.get("prompt", ""):
            self.answer(400, {"error": {"code": "content_policy_violation", "message": "no"}})
            return
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.calls += 1  # type: ignore[attr-defined]
            later = self.server.calls > 1  # type: ignore[attr-defined]
        if later:
            self.server.hold_later.wait(30)  # type: ignore[attr-defined]
        images = [painted(body["prompt"], width, height, None) for _ in range(body.get("n", 1))]
        data = [{"b64_json": base64.b64encode(png(image)).decode()} for image in images]
        self.answer(200, {"created": 0, "data": data})


def openai_server() -> LoopbackServer:
    server = LoopbackServer(OpenAIImagesHandler)
    server.calls = 0  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.hold_later = threading.Event()  # type: ignore[attr-defined]
    server.hold_later.set()  # a test clears it to hold every call but the first
    return server


class OpenAIImagesBackend(Backend):
    """Images from an OpenAI-compatible ``/v1/images/generations`` endpoint."""

    id = "openai-images"
    display_name = "OpenAI-compatible images"
    location = "remote"
    capabilities = Capabilities(
        step_events=False,  # the service reports no progress
        step_previews=False,
        seed=False,  # it takes no seed: no image claims one
        steps=False,  # nor a number of steps
        negative_prompt=False,
        guidance=False,
        sizes=SIZES,
        default_size=(512, 512),
        max_batch=4,
    )

    def __init__(self, url: str = "") -> None:
        self.url = url.rstrip("/")
        self._calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="openai-images")

    def availability(self) -> Availability:
        if not self.url:
            return Availability("not_configured", "Set the endpoint's base URL.")
        return Availability()

    def models(self) -> list[ModelInfo]:
        listed = httpx.get(f"{self.url}/v1/models", timeout=10).raise_for_status().json()
        return [
            ModelInfo(
                model["id"],
                defaults=ModelDefaults(sizes=WIDE_SIZES, default_size=(1024, 1024))
                if model["id"] == "image-wide"
                else None,
            )
            for model in listed["data"]
        ]

    def _post(self, request: GenerationRequest) -> httpx.Response:
        body = {
            "model": request.model,
            "prompt": request.prompt,
            "n": 1,  # one call per image, so each is shown as it arrives
            "size": f"{request.width}x{request.height}",
            "response_format": "b64_json",
        }
        return httpx.post(f"{self.url}/v1/images/generations", json=body, timeout=60)

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        width, height = request.width, request.height
        yield Started(None, request.model, None, width, height, request.num_images)
        yield Status("generating")
        calls = {self._calls.submit(self._post, request): i for i in range(request.num_images)}
        images: dict[int, PIL.Image.Image] = {}
        while len(images) < len(calls):
            if control.wait_cancelled(0.02):
                return
            for call, index in calls.items():
                if index in images or not call.done():
                    continue
                try:
                    response = call.result()
                except httpx.HTTPError as error:
                    yield Failed(
                        f"Cannot reach the images endpoint ({type(error).__name__}).",
                        "unavailable",
                    )
                    return
                if response.status_code != 200:
                    error = response.json().get("error", {})
                    if error.get("code") == "content_policy_violation":
                        yield Failed(
                            "The service's content filter refused the prompt.", "content_filtered"
                        )
                    else:
                        yield Failed(f"The service refused the request: {error.get('message')}.")
                    return
                item = response.json()["data"][0]
                images[index] = PIL.Image.open(
                    io.BytesIO(base64.b64decode(item["b64_json"]))
                ).convert("RGB")
                yield ImageReady(index, images[index])  # shown at once; no seed to claim
        yield Finished([images[i] for i in range(len(calls))])  # seeds=None: it has none


# --- a Replicate-style prediction API -------------------------------------------------------

TQDM_LINE = re.compile(r"(\d+)/(\d+) \[")


class PredictionHandler(JsonHandler):
    """A prediction API: ``POST /v1/predictions``, ``GET /v1/predictions/<id>`` (status,
    tqdm ``logs``, ``output`` URLs), ``GET /v1/files/<id>/<n>.png``, and ``POST
    /v1/predictions/<id>/cancel``. A prediction advances one tqdm line per poll, over the
    service's own count of steps (the request's steps plus two refiner steps)."""

    server: LoopbackServer

    def do_POST(self) -> None:
        predictions = self.server.predictions  # type: ignore[attr-defined]
        if self.path == "/v1/predictions":
            given = self.body()["input"]
            prediction_id = f"p{next(self.server.ids)}"  # type: ignore[attr-defined]
            base = f"{self.server.url}/v1/predictions/{prediction_id}"
            predictions[prediction_id] = {
                "input": given,
                "done": 0,
                "total": given["num_inference_steps"] + 2,
                "status": "starting",
                "urls": {
                    "get": base,
                    "cancel": f"{base}/cancel",
                    "web": f"{self.server.url}/p/{prediction_id}",
                },
            }
            self.answer(201, self.view(prediction_id))
        elif self.path.endswith("/cancel"):
            prediction_id = self.path.split("/")[3]
            self.server.cancel_gate.wait(30)  # type: ignore[attr-defined]
            if self.server.refuse_cancels:  # type: ignore[attr-defined]
                self.answer(409, {"detail": "the prediction is running on a worker already"})
                return
            predictions[prediction_id]["status"] = "canceled"
            self.server.cancelled.append(prediction_id)  # type: ignore[attr-defined]
            self.answer(200, self.view(prediction_id))
        else:
            self.answer(404, {"detail": "not found"})

    def do_GET(self) -> None:
        predictions = self.server.predictions  # type: ignore[attr-defined]
        parts = self.path.split("/")
        if self.path.startswith("/v1/files/"):
            prediction = predictions[parts[3]]
            given = prediction["input"]
            image = painted(given["prompt"], given["width"], given["height"], given["seed"])
            self.answer(200, png(image), "image/png")
            return
        prediction = predictions.get(parts[-1])
        if prediction is None:
            self.answer(404, {"detail": "not found"})
            return
        if prediction["status"] in ("starting", "processing"):
            if REFUSED_WORD in prediction["input"]["prompt"]:
                prediction["status"] = "failed"
            else:
                prediction["status"] = "processing"
                held = self.server.hold_at  # type: ignore[attr-defined]
                if held is None or prediction["done"] < held:
                    prediction["done"] += 1
                if prediction["done"] > prediction["total"]:
                    prediction["status"] = "succeeded"
        self.answer(200, self.view(parts[-1]))

    def view(self, prediction_id: str) -> dict:
        prediction = self.server.predictions[prediction_id]  # type: ignore[attr-defined]
        done, total = min(prediction["done"], prediction["total"]), prediction["total"]
        logs = "".join(
            f"{100 * n // total:3d}%|{'#' * n:<{total}}| {n}/{total} [00:0{n}<00:00]\n"
            for n in range(1, done + 1)
        )
        view = {
            "id": prediction_id,
            "status": prediction["status"],
            "logs": logs,
            "urls": prediction["urls"],
            "error": "NSFW content detected" if prediction["status"] == "failed" else None,
            "output": None,
        }
        if prediction["status"] == "succeeded":
            count = prediction["input"]["num_outputs"]
            view["output"] = [
                f"{self.server.url}/v1/files/{prediction_id}/{n}.png" for n in range(count)
            ]
        return view


def prediction_server() -> LoopbackServer:
    server = LoopbackServer(PredictionHandler)
    server.predictions = {}  # type: ignore[attr-defined]
    server.ids = itertools.count(1)  # type: ignore[attr-defined]
    server.cancelled = []  # type: ignore[attr-defined]
    server.refuse_cancels = False  # type: ignore[attr-defined]
    server.cancel_gate = threading.Event()  # type: ignore[attr-defined]
    server.cancel_gate.set()  # a test clears it to hold the answer to a cancel
    # a test sets a line to hold every prediction at (None: they run to the end)
    server.hold_at = None  # type: ignore[attr-defined]
    return server


class PredictionBackend(Backend):
    """Images from a Replicate-style prediction API, polled every ``poll`` seconds."""

    id = "predictions"
    display_name = "Prediction API"
    location = "remote"
    capabilities = Capabilities(
        step_events=True,  # progress from the service's logs...
        step_previews=False,  # ...but no previews
        exact_steps=False,  # its own count, and a poll may miss the last line
        cancel_confirms=True,  # a cancel goes to the service, whose answer ends the run
        seed_per_image=False,  # one seed for the whole batch
        negative_prompt=True,
        guidance=False,
        min_size=64,
        max_size=1024,
        steps_range=(1, 50),
        max_batch=4,
    )

    def __init__(self, url: str, poll: float = 0.01) -> None:
        self.url, self.poll = url.rstrip("/"), poll

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("sdxl", "SDXL on the prediction API")]

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        seeds = [request.seed] * request.num_images  # one seed for the batch, as declared
        yield Started(
            request.steps, request.model, seeds, request.width, request.height, len(seeds)
        )
        given = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed,
            "num_inference_steps": request.steps,
            "width": request.width,
            "height": request.height,
            "num_outputs": request.num_images,
        }
        with httpx.Client(timeout=10) as client:
            prediction = client.post(f"{self.url}/v1/predictions", json={"input": given}).json()
            # the service's id and page for the job, so a person can find it there
            yield Status("queued", job_id=prediction["id"], job_url=prediction["urls"]["web"])
            seen = 0
            while prediction["status"] in ("starting", "processing"):
                if control.wait_cancelled(self.poll):
                    yield self._cancel(client, prediction)
                    return
                prediction = client.get(prediction["urls"]["get"]).json()
                found = TQDM_LINE.findall(prediction["logs"] or "")
                if found and int(found[-1][0]) > seen:
                    seen, total = (int(part) for part in found[-1])
                    yield Step(seen, total)
            if prediction["status"] != "succeeded":
                reason = (
                    "content_filtered" if "NSFW" in str(prediction["error"]) else "remote_error"
                )
                yield Failed(f"The prediction failed: {prediction['error']}.", reason)
                return
            yield Status("fetching")
            images = [
                PIL.Image.open(io.BytesIO(client.get(url).content)).convert("RGB")
                for url in prediction["output"]
            ]
        yield Finished(images, seeds)

    @staticmethod
    def _cancel(client: httpx.Client, prediction: dict) -> Cancelled:
        """Cancel by URL and report the service's answer: stopped, or refused (the
        prediction may still run, and bill)."""
        try:
            answer = client.post(prediction["urls"]["cancel"], timeout=5)
        except httpx.HTTPError as error:
            return Cancelled(False, f"the service could not be reached: {type(error).__name__}")
        if answer.is_success and answer.json().get("status") == "canceled":
            return Cancelled(True)
        said = answer.json().get("detail") if answer.content else None
        return Cancelled(False, f"the service answered {answer.status_code}: {said}")
