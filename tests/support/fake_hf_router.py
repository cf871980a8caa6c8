"""A loopback Hugging Face Inference router (and the bit of the Hub API that lists models), for
tests of the hf-inference backend.

It answers what the real services answer, as huggingface_hub 2.4 builds and reads them
(``inference/_providers/hf_inference.py``, ``inference/_client.py``, ``hf_api.list_models``,
``utils/_http.hf_raise_for_status``):

- ``POST /hf-inference/models/<org>/<name>`` with ``Authorization: Bearer hf_...``,
  ``Accept: image/png`` and the JSON ``{"inputs": prompt, "parameters": {...}}``: the image bytes
  (``image/png``), or a scripted answer: 503 ``{"error", "estimated_time"}`` while a model
  loads, 429 with ``Retry-After`` or IETF ``RateLimit`` headers, 401/403 ``{"error"}``,
  404/410, a JSON body with status 200, a stall, a dropped connection, a black image.
  Like the router it checks the request and answers 401 for a missing or wrong token and 400
  for a malformed body (recording why in ``problems``).
- ``GET /api/models?pipeline_tag=text-to-image&inference_provider=...&expand=
  inferenceProviderMapping``: the served models with their provider mappings.

The image depends only on the prompt, the seed and the size, so the same seed gives the same
image. ``requests`` records every request; ``disconnects`` the stalled requests whose client
hung up.

Offline mode: tests run with ``HF_HUB_OFFLINE=1`` and huggingface_hub refuses every request
then, loopback included (its session's request hook checks
``huggingface_hub.constants.is_offline_mode()``, which reads the module constant
``HF_HUB_OFFLINE`` on every call). ``serve_router`` therefore sets that constant to False for the
test only (pytest's ``monkeypatch`` restores it): the library's own switch, read by the library
and by the backend's ``availability()`` alike, so the backend is tested exactly as it runs online.
Nothing else can reach the network here, and ``test_offline_mode_...`` checks the switch's other
position.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import PIL.Image

STANDARD_PARAMETERS = {
    "negative_prompt": str,
    "width": int,
    "height": int,
    "num_inference_steps": int,
    "guidance_scale": (int, float),
    "scheduler": str,
    "seed": int,
}
ROUTE = re.compile(r"^/hf-inference/models/(?P<model>[\w.-]+/[\w.-]+)$")


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``kind`` is image, black, json, stall or drop."""

    kind: str = "image"
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def image() -> Reply:
    return Reply("image")


def black_image() -> Reply:
    return Reply("black")


def loading(estimated_time: float, model: str = "the model") -> Reply:
    return Reply(
        "json",
        503,
        {"error": f"Model {model} is currently loading", "estimated_time": estimated_time},
    )


def rate_limited(retry_after: str | None = None, reset: int | None = None) -> Reply:
    """429; ``retry_after`` as the ``Retry-After`` header, ``reset`` as IETF RateLimit ones."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if reset is not None:
        headers["RateLimit"] = f'"api";r=0;t={reset}'
        headers["RateLimit-Policy"] = '"fixed window";"api";q=500;w=300'
    return Reply("json", 429, {"error": "Too Many Requests: rate limit reached"}, headers)


def error(status: int, message: str, **headers: str) -> Reply:
    return Reply("json", status, {"error": message}, dict(headers))


def json_body(body: Any, status: int = 200) -> Reply:
    return Reply("json", status, body)


def stall(seconds: float = 30.0) -> Reply:
    """No answer for ``seconds`` (or until ``release()``), then an image."""
    return Reply("stall", seconds=seconds)


def drop() -> Reply:
    """Close the connection without answering."""
    return Reply("drop")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names."""
    body: Any


class FakeRouter:
    """The server; ``url`` is the router's base, ``hub_url`` the Hub API's (the same server)."""

    def __init__(
        self, served: dict[str, tuple[str, ...]] | None = None, token: str | None = None
    ) -> None:
        self.token = token or "hf_fakerouter" + secrets.token_hex(8)
        """The one token the router accepts."""
        self.served = dict(served or {})
        """model id -> providers serving it (listed by the Hub API; others are 404s)."""
        self.requests: list[Seen] = []
        self.problems: list[str] = []
        self.disconnects: list[str] = []
        self.echo_token_in_errors = False
        """Put the request's Authorization header into 401 messages (a careless server)."""
        self._scripts: dict[str, list[Reply]] = {}
        self._hub_replies: list[Reply] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    hub_url = url

    def script(self, model: str, *replies: Reply) -> None:
        """The next answers for ``model``, in order; then images again."""
        with self._lock:
            self._scripts.setdefault(model, []).extend(replies)

    def script_hub(self, *replies: Reply) -> None:
        """The next answers of the model listing (``stall()``, ``error(...)``)."""
        with self._lock:
            self._hub_replies.extend(replies)

    def posts(self, model: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.requests
            if r.method == "POST" and (model is None or r.path.endswith(f"/models/{model}"))
        ]

    def release(self) -> None:
        """End every stall now."""
        self._release.set()

    def start(self) -> FakeRouter:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; the port then refuses connections. Safe to call twice."""
        self._release.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _next(self, model: str) -> Reply:
        with self._lock:
            queue = self._scripts.get(model)
            return queue.pop(0) if queue else image()

    def _next_hub(self) -> Reply | None:
        with self._lock:
            return self._hub_replies.pop(0) if self._hub_replies else None


def serve_router(
    monkeypatch, served: dict[str, tuple[str, ...]], token: str | None = None
) -> Iterator[FakeRouter]:
    """For a fixture: a started router, huggingface_hub allowed to reach it (see above)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    router = FakeRouter(served, token).start()
    try:
        yield router
    finally:
        router.close()


def configure_environment(monkeypatch, router: FakeRouter, models: str) -> None:
    """Configure the registry's own hf-inference backend (``from_environment``) for
    ``router``: its token in HF_TOKEN, its address as the router, ``models`` offered."""
    monkeypatch.setenv("HF_TOKEN", router.token)
    monkeypatch.setenv("DIFFUSION_PREVIEW_HF_ROUTER_URL", router.url)
    monkeypatch.setenv("DIFFUSION_PREVIEW_HF_MODELS", models)


LAST_STATE_JS = """(v) => {
  const state = v ? `${v.status} ${v.phase} ${v.reason} ${v.retry_after}` : "";
  (window.gdpStates ||= []).push(state);
  return state;
}"""


def inference_app(backend):
    """A small Gradio app streaming ``backend`` into a DiffusionPreview (API name
    ``/generate``: prompt, model, width, height, seed); the "Last state" box shows the value's
    status, phase, reason and retry_after as the browser received them."""
    import gradio as gr

    from gradio_diffusion_preview import DiffusionPreview, Registry, stream

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_backends(backend)

    def generate(prompt, model, width, height, seed):
        yield from stream(
            backend.id,
            registry=registry,
            prompt=prompt,
            model=model,
            width=int(width),
            height=int(height),
            seed=int(seed),
        )

    with gr.Blocks() as app:
        prompt = gr.Textbox("a lighthouse at dusk", label="Prompt")
        model = gr.Textbox(label="Model")
        width = gr.Number(256, label="Width", precision=0)
        height = gr.Number(256, label="Height", precision=0)
        seed = gr.Number(7, label="Seed", precision=0)
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation")
        run = button.click(
            generate, [prompt, model, width, height, seed], preview, api_name="generate"
        )
        preview.attach_run(run)
        last_state = gr.Textbox(label="Last state")
        # In the browser only (no server event, which would touch the preview's loading
        # status): the value's status, phase, reason and retry_after as the page has them,
        # each also kept in the page's ``gdpStates`` (a state that lasts a few seconds can be
        # over before a test on a loaded machine looks at the box).
        preview.change(None, preview, last_state, js=LAST_STATE_JS)
    return app


def fake_image(prompt: str, seed: int, width: int, height: int) -> PIL.Image.Image:
    """A picture that depends only on its arguments: a gradient in colours from a hash."""
    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    low, high = np.array(list(digest[:3]), float), np.array(list(digest[3:6]), float)
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = low * (1 - t) * (1 - rows / 2) + high * t + 40 * rows
    return PIL.Image.fromarray(np.clip(pixels, 30, 255).astype(np.uint8), "RGB")


def _handler(router: FakeRouter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            seen = Seen("GET", url.path, parse_qs(url.query), self._headers(), None)
            router.requests.append(seen)
            if url.path != "/api/models":
                return self._json(404, {"error": f"no route {url.path}"})
            reply = router._next_hub()
            if reply is not None and reply.kind == "stall":
                self._stall(reply.seconds, url.path)
            elif reply is not None:
                return self._json(reply.status, reply.body, reply.headers)
            return self._json(200, self._listing(seen.query))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            seen = Seen("POST", url.path, parse_qs(url.query), self._headers(), body)
            router.requests.append(seen)
            route = ROUTE.match(url.path)
            if route is None:
                return self._json(404, {"error": f"Not Found: {url.path}"})
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {router.token}":
                said = f" ({auth})" if router.echo_token_in_errors and auth else ""
                return self._json(
                    401, {"error": f"Invalid credentials in Authorization header{said}"}
                )
            problem = self._problem(body)
            if problem:
                router.problems.append(problem)
                return self._json(400, {"error": problem})
            model = route["model"]
            if model not in router.served:
                return self._json(404, {"error": f"Model {model} does not exist"})
            self._answer(router._next(model), model, body)

        def _headers(self) -> dict[str, str]:
            return {name.lower(): value for name, value in self.headers.items()}

        def _answer(self, reply: Reply, model: str, body: dict) -> None:
            if reply.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.kind == "json":
                return self._json(reply.status, reply.body, reply.headers)
            if reply.kind == "stall" and not self._stall(reply.seconds, model):
                return
            parameters = body.get("parameters", {})
            picture = fake_image(
                body["inputs"],
                parameters.get("seed", 0),
                parameters.get("width", 512),
                parameters.get("height", 512),
            )
            if reply.kind == "black":
                picture = PIL.Image.new("RGB", picture.size)
            buffer = io.BytesIO()
            picture.save(buffer, "PNG")
            self._send(200, buffer.getvalue(), "image/png", reply.headers)

        def _stall(self, seconds: float, what: str) -> bool:
            """Wait; False (recorded) when the client hung up meanwhile."""
            end = time.monotonic() + seconds
            while time.monotonic() < end and not router._release.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.02)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    router.disconnects.append(what)
                    self.close_connection = True
                    return False
            return True

        def _problem(self, body: Any) -> str | None:
            """What the router would reject in this request, or None."""
            if self.headers.get("Accept") != "image/png":
                return f"Accept must be image/png, got {self.headers.get('Accept')!r}"
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                return "the body must be JSON"
            if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
                return "the body must be {'inputs': <prompt>, 'parameters': {...}}"
            if set(body) - {"inputs", "parameters"}:
                return f"unexpected top-level fields {sorted(set(body) - {'inputs', 'parameters'})}"
            parameters = body.get("parameters", {})
            if not isinstance(parameters, dict):
                return "parameters must be an object"
            for name, kind in STANDARD_PARAMETERS.items():
                if name in parameters and (
                    not isinstance(parameters[name], kind) or isinstance(parameters[name], bool)
                ):
                    return f"parameters.{name} has the wrong type: {parameters[name]!r}"
            return None

        def _listing(self, query: dict[str, list[str]]) -> list[dict]:
            if query.get("pipeline_tag") != ["text-to-image"]:
                router.problems.append(f"listing without pipeline_tag=text-to-image: {query}")
            if "inferenceProviderMapping" not in query.get("expand", []):
                router.problems.append(f"listing without expand=inferenceProviderMapping: {query}")
            wanted = query.get("inference_provider", ["all"])[0]
            limit = int(query.get("limit", ["1000"])[0])
            listed = []
            for model, providers in router.served.items():
                mapping = [
                    {"provider": p, "providerId": model, "status": "live", "task": "text-to-image"}
                    for p in providers
                    if wanted in ("all", p)
                ]
                if mapping:
                    listed.append({"id": model, "_id": model, "inferenceProviderMapping": mapping})
            return listed[:limit]

        def _json(self, status: int, body: Any, headers: dict | None = None) -> None:
            self._send(status, json.dumps(body).encode(), "application/json", headers or {})

        def _send(self, status: int, data: bytes, kind: str, headers: dict) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Request-Id", secrets.token_hex(6))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                router.disconnects.append(self.path)

    return Handler
