"""A small text-to-image HTTP service, standing in for a hosted image API in the example and its
tests. It answers like many such APIs: one POST per image, the PNG bytes when it is done, JSON
errors with the usual status codes (and ``Retry-After`` when trying again later may work).

    GET  /models              -> [{"id", "name", "steps": [low, high], "default_steps"}, ...]
    POST /models/<id>         {"inputs": prompt, "parameters": {"width", "height",
                               "num_inference_steps", "seed"}} -> image/png
    errors                    {"error": "..."}: 400 bad parameters, 401 no or wrong token,
                              404 no such model, 422 prompt refused by the content filter,
                              429/503 with Retry-After while ``outage`` is set

Serve it with ``python image_service.py [port]``; the tests start it in a fixture.
"""

from __future__ import annotations

import io
import json
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import PIL.Image

MODELS = [
    {"id": "sketch", "name": "Sketch", "steps": [1, 50], "default_steps": 20},
    {"id": "sketch-turbo", "name": "Sketch turbo", "steps": [1, 4], "default_steps": 2},
]


class ImageService(ThreadingHTTPServer):
    """The service. ``seconds``: how long drawing one image takes; ``token``: the bearer token
    it requires (None: none); ``outage``: (status, retry_after) to answer every POST with."""

    daemon_threads = True

    def __init__(self, address=("127.0.0.1", 0), seconds=0.2, token=None) -> None:
        super().__init__(address, _Handler)
        self.seconds, self.token = seconds, token
        self.outage: tuple[int, float] | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def draw(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A PNG whose colour the prompt picks and whose grain the seed picks."""
    hue = zlib.crc32(prompt.encode())
    base = np.array([hue & 255, hue >> 8 & 255, hue >> 16 & 255])
    grain = np.random.default_rng(seed).integers(-40, 40, (height, width, 3))
    buffer = io.BytesIO()
    PIL.Image.fromarray((base + grain).clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: ImageService

    def do_GET(self) -> None:
        if self.path != "/models":
            return self._error(404, f"No such path: {self.path}")
        self._send(200, "application/json", json.dumps(MODELS).encode())

    def do_POST(self) -> None:
        service = self.server
        if service.token and self.headers.get("Authorization") != f"Bearer {service.token}":
            return self._error(401, "Invalid or missing token")
        model = next((m for m in MODELS if f"/models/{m['id']}" == self.path), None)
        if model is None:
            return self._error(404, f"Model {self.path.removeprefix('/models/')} does not exist")
        if service.outage:
            status, retry_after = service.outage
            return self._error(status, "Try again later", {"Retry-After": f"{retry_after:g}"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        prompt, parameters = body.get("inputs", ""), body.get("parameters", {})
        low, high = model["steps"]
        steps = parameters.get("num_inference_steps", model["default_steps"])
        if not low <= steps <= high:
            return self._error(400, f"num_inference_steps must be from {low} to {high}")
        if "forbidden" in prompt.lower():
            return self._error(422, "The prompt was refused by the content filter")
        time.sleep(service.seconds)
        size = parameters.get("width", 512), parameters.get("height", 512)
        self._send(200, "image/png", draw(prompt, parameters.get("seed", 0), *size))

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send(status, "application/json", json.dumps({"error": message}).encode(), headers)

    def _send(self, status: int, kind: str, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # quiet in tests
        pass


if __name__ == "__main__":
    service = ImageService(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
    print(f"Serving images at {service.url}", flush=True)
    service.serve_forever()
