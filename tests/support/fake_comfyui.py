"""A loopback ComfyUI for tests: a real aiohttp HTTP + websocket server that reproduces ComfyUI's
API as its sources define it (server.py, execution.py, main.py, comfy_execution/progress.py,
latent_preview.py at v0.3.64, plus the per-prompt ``extra_data.preview_method`` of newer
servers), with a handful of nodes that paint deterministic pictures in milliseconds.

What it reproduces, and the tests rely on:

- ``POST /prompt`` validates the graph (unknown class, no output node, missing input, a value
  out of range or not in a list) and answers 400 with ``error`` and ``node_errors`` as
  ``validate_prompt`` does; a good prompt goes into a priority queue (``number``).
- One worker thread runs prompts in order. Events go only to the socket whose id is the running
  prompt's ``client_id``; ``status`` (queue changes) goes to every socket. A socket opened with
  an id that is in use replaces the old one; on reconnect the running client gets ``executing``
  with the last node again.
- A KSampler sends ``progress`` per step and, when the prompt's ``preview_method`` asks for
  previews (the server default is none), a preview frame: type 1 (4-byte event, 4-byte image
  type, JPEG) right after its ``progress``, or type 4 with metadata right before it for a client
  that announced ``supports_preview_metadata``.
- The output cache: a node whose inputs (and ancestors) are unchanged since the last prompt is not
  run again; ``execution_cached`` lists it and its ``executed`` message is replayed.
- ``POST /interrupt`` (with ``prompt_id``: only if that prompt runs), ``POST /queue`` delete and
  clear, ``GET /queue``, ``/history``, ``/view``, ``/object_info``, ``/models/checkpoints`` and the
  origin check (403 when the Host is loopback and the Origin names another host).

- ``POST /upload/image`` (server.py ``image_upload``): a multipart ``image`` file saved in the
  ``input`` folder (``type``), answered ``{name, subfolder, type}``; ``LoadImage`` reads it (a
  name that is not there fails the prompt, as ``LoadImage.VALIDATE_INPUTS`` does), ``VAEEncode``
  makes its latent, and a ``KSampler`` with ``denoise`` below 1 starts from that latent noised to
  ``denoise`` and runs its ``steps`` steps (``KSampler``: the last ``steps`` of a schedule of
  ``int(steps / denoise)``), so every preview and the result show the input.
- Inpainting (nodes.py at comfyanonymous/ComfyUI@01094316268cab9ed5cd53b825b359a7becb9d6c):
  ``LoadImageMask(image, channel)`` reads one channel of an uploaded file as the mask (``alpha``
  inverted, as ComfyUI does; a channel not in alpha/red/green/blue is refused by validation),
  ``SetLatentNoiseMask(samples, mask)`` puts it on the latent, and the sampler then remakes only
  where the mask is 1 and keeps the input's latent elsewhere, at every step and in the result
  (ComfyUI's ``KSamplerX0Inpaint`` blends ``x0 * mask + latent * (1 - mask)``).

Knobs for failures (set them on the instance): ``fail_next`` (an exception in the next sampler),
``stall`` (samplers hang until interrupted), ``drop_socket_at_step``, ``refuse_sockets``,
``garbage`` (junk frames among a run's messages), ``corrupt_view``, ``forbidden``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import heapq
import io
import json
import struct
import threading
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
from aiohttp import web

from gradio_diffusion_preview import Failed, Finished, Status, Step
from gradio_diffusion_preview.backends.comfyui.backend import ComfyUIBackend
from gradio_diffusion_preview.control import RunControl
from gradio_diffusion_preview.endpoints import Endpoint
from gradio_diffusion_preview.request import build_request, validate_request

PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4
PREVIEW_METHODS = ("auto", "latent2rgb", "taesd")  # the ones that make previews
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "ddim"]
SCHEDULERS = ["normal", "karras", "simple"]
OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
    "before you might have accidentally set the batch_size to a large number."
)


class Interrupted(Exception):
    """comfy.model_management.InterruptProcessingException."""


class NodeFailure(Exception):
    """An exception a node raised, with the type name ComfyUI would report."""

    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type


# -- nodes -----------------------------------------------------------------------------------


@dataclass
class NodeClass:
    required: dict[str, tuple]
    returns: tuple[str, ...]
    output_node: bool = False


def node_classes(checkpoints: list[str]) -> dict[str, NodeClass]:
    return {
        "CheckpointLoaderSimple": NodeClass(
            {"ckpt_name": (checkpoints, {})}, ("MODEL", "CLIP", "VAE")
        ),
        "CLIPTextEncode": NodeClass(
            {"text": ("STRING", {"multiline": True}), "clip": ("CLIP", {})}, ("CONDITIONING",)
        ),
        "EmptyLatentImage": NodeClass(
            {
                "width": ("INT", {"default": 512, "min": 16, "max": 16384, "step": 8}),
                "height": ("INT", {"default": 512, "min": 16, "max": 16384, "step": 8}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
            },
            ("LATENT",),
        ),
        "KSampler": NodeClass(
            {
                "model": ("MODEL", {}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}),
                "sampler_name": (SAMPLERS, {}),
                "scheduler": (SCHEDULERS, {}),
                "positive": ("CONDITIONING", {}),
                "negative": ("CONDITIONING", {}),
                "latent_image": ("LATENT", {}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}),
            },
            ("LATENT",),
        ),
        "VAEDecode": NodeClass({"samples": ("LATENT", {}), "vae": ("VAE", {})}, ("IMAGE",)),
        "LoadImage": NodeClass({"image": ("STRING", {"image_upload": True})}, ("IMAGE", "MASK")),
        "VAEEncode": NodeClass({"pixels": ("IMAGE", {}), "vae": ("VAE", {})}, ("LATENT",)),
        "LoadImageMask": NodeClass(
            {
                "image": ("STRING", {"image_upload": True}),
                "channel": (["alpha", "red", "green", "blue"], {}),
            },
            ("MASK",),
        ),
        "SetLatentNoiseMask": NodeClass(
            {"samples": ("LATENT", {}), "mask": ("MASK", {})}, ("LATENT",)
        ),
        "SaveImage": NodeClass(
            {"images": ("IMAGE", {}), "filename_prefix": ("STRING", {"default": "ComfyUI"})},
            (),
            output_node=True,
        ),
        "PreviewImage": NodeClass({"images": ("IMAGE", {})}, (), output_node=True),
    }


def node_info(name: str, node: NodeClass) -> dict[str, Any]:
    """``GET /object_info/{class}``'s entry, as server.py ``node_info`` builds it."""
    required = {
        key: [list(kind), extra] if isinstance(kind, list) else [kind, extra]
        for key, (kind, extra) in node.required.items()
    }
    return {
        "input": {"required": required},
        "input_order": {"required": list(required)},
        "output": list(node.returns),
        "output_is_list": [False] * len(node.returns),
        "output_name": list(node.returns),
        "name": name,
        "display_name": name,
        "description": "",
        "python_module": "nodes",
        "category": "fake",
        "output_node": node.output_node,
    }


def seed_of(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


# -- the server ------------------------------------------------------------------------------


@dataclass
class Knobs:
    step_delay: float = 0.01
    fail_next: tuple[str, str] | None = None  # (exception type, message) in the next sampler
    stall: bool = False
    drop_socket_at_step: int | None = None
    refuse_sockets: bool = False
    garbage: bool = False
    corrupt_view: bool = False
    forbidden: bool = False
    feature_flags: bool = True  # the server knows supports_preview_metadata
    per_prompt_preview_method: bool = True  # newer servers read extra_data.preview_method
    preview_size: int = 512


class FakeComfyUI:
    """Start with ``start()`` (or as a context manager); ``url`` is its address."""

    def __init__(self, checkpoints=("sd15.safetensors", "sdxl_base.safetensors")) -> None:
        self.checkpoints = list(checkpoints)
        self.classes = node_classes(self.checkpoints)
        self.knobs = Knobs()
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.flags: dict[str, dict] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.number = 0
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.queue: list[tuple] = []
        self.running: dict[int, tuple] = {}
        self.history: dict[str, dict] = {}
        self.history_written = threading.Condition(self.mutex)
        self.task_counter = 0
        self.interrupt_flag = False
        self.cache: dict[Any, tuple[Any, Any]] = {}  # signature -> (outputs, ui)
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.file_counter = 0
        self.sampled: list[dict[str, Any]] = []
        """Each KSampler run: its denoise, steps, latent size and whether it started from an
        encoded image."""
        self.interrupts: list[tuple[str | None, bool]] = []
        self.sent: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        """What each socket (by client id) was sent: (event, prompt_id), binary as 'binary:N'."""
        self.deleted: list[str] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._messages: asyncio.Queue | None = None
        self._stopping = False
        self._backends: list[ComfyUIBackend] = []

    # -- life --------------------------------------------------------------------------------

    def start(self) -> FakeComfyUI:
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True, name="fake-comfy").start()
        if not ready.wait(10):
            raise RuntimeError("the fake ComfyUI did not start")
        threading.Thread(target=self._worker, daemon=True, name="fake-comfy-worker").start()
        return self

    def backend(self, **fields: Any) -> ComfyUIBackend:
        """A backend for this server (see ``comfy_backend``), closed when the server stops."""
        made = comfy_backend(self.url, **fields)
        self._backends.append(made)
        return made

    def stop(self) -> None:
        for made in self._backends:
            made.close()
        self._stopping = True
        with self.not_empty:
            self.interrupt_flag = True
            self.not_empty.notify_all()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> FakeComfyUI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._messages = asyncio.Queue()
        app = web.Application(middlewares=[self._origin_only])
        app.add_routes(self._routes())
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        loop.create_task(self._publish())
        ready.set()
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(runner.cleanup())
            loop.close()

    # -- sending (server.py send_sync / publish_loop / send_json / send_bytes) --------------

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        if self._loop is not None and not self._stopping:
            self._loop.call_soon_threadsafe(self._messages.put_nowait, (event, data, sid))

    async def _publish(self) -> None:
        while True:
            event, data, sid = await self._messages.get()
            if event == "__close__":
                socket = self.sockets.get(sid)
                if socket is not None:
                    await socket.close()
                continue
            if isinstance(event, int):
                message = struct.pack(">I", event) + bytes(data)
                targets = [sid] if sid is not None else list(self.sockets)
                for target in targets:
                    if target in self.sockets:
                        self.sent[target].append((f"binary:{event}", None))
                        await _quietly(self.sockets[target].send_bytes(message))
            elif isinstance(data, str | bytes):  # raw junk, as it is
                if sid in self.sockets:
                    send = self.sockets[sid].send_bytes if isinstance(data, bytes) else None
                    await _quietly(send(data) if send else self.sockets[sid].send_str(data))
            else:
                message = {"type": event, "data": data}
                targets = [sid] if sid is not None else list(self.sockets)
                prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
                for target in targets:
                    if target in self.sockets:
                        self.sent[target].append((event, prompt_id))
                        await _quietly(self.sockets[target].send_json(message))

    def queue_info(self) -> dict[str, Any]:
        with self.mutex:
            return {"exec_info": {"queue_remaining": len(self.queue) + len(self.running)}}

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.queue_info()})

    # -- routes ------------------------------------------------------------------------------

    @web.middleware
    async def _origin_only(self, request: web.Request, handler):
        if self.knobs.forbidden:
            return web.Response(status=403)
        host, origin = request.headers.get("Host"), request.headers.get("Origin")
        if host and origin:
            host_name = urllib.parse.urlsplit("//" + host.lower()).hostname
            origin_name = urllib.parse.urlparse(origin).hostname
            if host_name in ("127.0.0.1", "localhost", "::1") and host_name != origin_name:
                return web.Response(status=403)
        return await handler(request)

    def _routes(self) -> list:
        routes = web.RouteTableDef()

        @routes.get("/ws")
        async def websocket(request: web.Request):
            if self.knobs.refuse_sockets:
                return web.Response(status=503)
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
            self.sockets.pop(sid, None)
            self.sockets[sid] = ws
            self.flags[sid] = {}
            try:
                await ws.send_json(
                    {"type": "status", "data": {"status": self.queue_info(), "sid": sid}}
                )
                if self.client_id == sid and self.last_node_id is not None:
                    await ws.send_json({"type": "executing", "data": {"node": self.last_node_id}})
                first = True
                async for message in ws:
                    if message.type.name != "TEXT":
                        continue
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        continue
                    if first and self.knobs.feature_flags and data.get("type") == "feature_flags":
                        self.flags[sid] = data.get("data", {})
                        features = {"supports_preview_metadata": True, "max_upload_size": 1 << 20}
                        await ws.send_json({"type": "feature_flags", "data": features})
                    first = False
            finally:
                if self.sockets.get(sid) is ws:
                    self.sockets.pop(sid, None)
                    self.flags.pop(sid, None)
            return ws

        @routes.get("/prompt")
        async def get_prompt(request):
            return web.json_response(self.queue_info())

        @routes.post("/prompt")
        async def post_prompt(request):
            body = await request.json()
            number = float(body["number"]) if "number" in body else self.number
            if "number" not in body:
                if body.get("front"):
                    number = -number
                self.number += 1
            if "prompt" not in body:
                error = {
                    "type": "no_prompt",
                    "message": "No prompt provided",
                    "details": "No prompt provided",
                    "extra_info": {},
                }
                return web.json_response({"error": error, "node_errors": {}}, status=400)
            prompt = body["prompt"]
            prompt_id = str(body.get("prompt_id", uuid.uuid4()))
            ok, error, outputs, node_errors = self.validate(prompt)
            extra = dict(body.get("extra_data") or {})
            if "client_id" in body:
                extra["client_id"] = body["client_id"]
            if not ok:
                return web.json_response({"error": error, "node_errors": node_errors}, status=400)
            self.put((number, prompt_id, prompt, extra, outputs))
            return web.json_response(
                {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
            )

        @routes.get("/queue")
        async def get_queue(request):
            with self.mutex:
                running, pending = list(self.running.values()), list(self.queue)
            return web.json_response({"queue_running": running, "queue_pending": pending})

        @routes.post("/queue")
        async def post_queue(request):
            body = await request.json()
            with self.mutex:
                if body.get("clear"):
                    self.queue = []
                    self.queue_updated()
                for prompt_id in body.get("delete", []):
                    for index, item in enumerate(self.queue):
                        if item[1] == prompt_id:
                            self.queue.pop(index)
                            heapq.heapify(self.queue)
                            self.deleted.append(prompt_id)
                            self.queue_updated()
                            break
            return web.Response(status=200)

        @routes.post("/interrupt")
        async def post_interrupt(request):
            try:
                body = await request.json()
            except ValueError:
                body = {}
            prompt_id = body.get("prompt_id")
            with self.mutex:
                running = [item[1] for item in self.running.values()]
                hit = prompt_id is None or prompt_id in running
                if hit:
                    self.interrupt_flag = True
            self.interrupts.append((prompt_id, hit))
            return web.Response(status=200)

        @routes.get("/history/{prompt_id}")
        async def get_history_of(request):
            prompt_id = request.match_info["prompt_id"]
            with self.mutex:
                entry = copy.deepcopy(self.history.get(prompt_id))
            return web.json_response({prompt_id: entry} if entry else {})

        @routes.get("/history")
        async def get_history(request):
            with self.mutex:
                return web.json_response(copy.deepcopy(self.history))

        @routes.get("/view")
        async def view(request):
            query = request.rel_url.query
            filename = query.get("filename", "")
            if not filename or filename[0] == "/" or ".." in filename:
                return web.Response(status=400)
            key = (query.get("type", "output"), query.get("subfolder", ""), filename)
            if key not in self.files:
                return web.Response(status=404)
            body = b"not an image at all" if self.knobs.corrupt_view else self.files[key]
            return web.Response(body=body, content_type="image/png")

        @routes.post("/upload/image")
        async def upload_image(request):
            post = await request.post()
            image = post.get("image")
            if image is None or not getattr(image, "file", None):
                return web.Response(status=400)
            kind = post.get("type") or "input"
            subfolder = post.get("subfolder") or ""
            filename = image.filename
            if not filename or filename[0] == "/" or ".." in filename:
                return web.Response(status=400)
            data = image.file.read()
            with self.mutex:
                if (kind, subfolder, filename) in self.files and post.get("overwrite") != "true":
                    stem, dot, ext = filename.rpartition(".")
                    counter = 1
                    while (kind, subfolder, f"{stem} ({counter}){dot}{ext}") in self.files:
                        counter += 1
                    filename = f"{stem} ({counter}){dot}{ext}"
                self.files[(kind, subfolder, filename)] = data
            return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})

        @routes.get("/object_info/{node_class}")
        async def object_info(request):
            name = request.match_info["node_class"]
            node = self.classes.get(name)
            return web.json_response({name: node_info(name, node)} if node else {})

        @routes.get("/models/{folder}")
        async def models(request):
            if request.match_info["folder"] != "checkpoints":
                return web.Response(status=404)
            return web.json_response(self.checkpoints)

        return list(routes)

    # -- validation (execution.py validate_prompt / validate_inputs) -------------------------

    def validate(self, prompt: Any) -> tuple[bool, dict | None, list[str], dict]:
        if not isinstance(prompt, dict):
            prompt = {}
        outputs = []
        for node_id, node in prompt.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return (
                    False,
                    _error(
                        "invalid_prompt",
                        "Cannot execute because a node is missing the class_type property.",
                        f"Node ID '#{node_id}'",
                    ),
                    [],
                    {},
                )
            if node["class_type"] not in self.classes:
                return (
                    False,
                    _error(
                        "invalid_prompt",
                        f"Cannot execute because node {node['class_type']} does not exist.",
                        f"Node ID '#{node_id}'",
                    ),
                    [],
                    {},
                )
            if self.classes[node["class_type"]].output_node:
                outputs.append(node_id)
        if not outputs:
            return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
        validated: dict[str, tuple[bool, list]] = {}
        good, failed = [], []
        node_errors: dict[str, dict] = {}
        for output in outputs:
            valid, reasons = self._validate_node(prompt, output, validated)
            if valid:
                good.append(output)
                continue
            failed.append((output, reasons))
            for node_id, (ok, node_reasons) in validated.items():
                if not ok and node_reasons:
                    entry = node_errors.setdefault(
                        node_id,
                        {
                            "errors": node_reasons,
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        },
                    )
                    entry["dependent_outputs"].append(output)
        if not good:
            details = "\n".join(f"{r['message']}: {r['details']}" for _, rs in failed for r in rs)
            return (
                False,
                _error(
                    "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
                ),
                [],
                node_errors,
            )
        return True, None, good, node_errors

    def _validate_node(self, prompt: dict, node_id: str, validated: dict) -> tuple[bool, list]:
        if node_id in validated:
            return validated[node_id]
        node = prompt[node_id]
        spec = self.classes[node["class_type"]]
        inputs = node.get("inputs") or {}
        errors, valid = [], True
        for name, (kind, extra) in spec.required.items():
            if name not in inputs:
                errors.append(
                    _error(
                        "required_input_missing", "Required input is missing", name, input_name=name
                    )
                )
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2 or value[0] not in prompt:
                    errors.append(
                        _error(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            name,
                            input_name=name,
                        )
                    )
                    continue
                ok, _ = self._validate_node(prompt, value[0], validated)
                valid = valid and ok
                continue
            try:
                if kind == "INT":
                    value = int(value)
                elif kind == "FLOAT":
                    value = float(value)
                elif kind == "STRING":
                    value = str(value)
            except (TypeError, ValueError) as error:
                errors.append(
                    _error(
                        "invalid_input_type",
                        f"Failed to convert an input value to a {kind} value",
                        f"{name}, {value}, {error}",
                        input_name=name,
                    )
                )
                continue
            if "min" in extra and value < extra["min"]:
                errors.append(
                    _error(
                        "value_smaller_than_min",
                        f"Value {value} smaller than min of {extra['min']}",
                        name,
                        input_name=name,
                    )
                )
            elif "max" in extra and value > extra["max"]:
                errors.append(
                    _error(
                        "value_bigger_than_max",
                        f"Value {value} bigger than max of {extra['max']}",
                        name,
                        input_name=name,
                    )
                )
            elif isinstance(kind, list) and value not in kind:
                errors.append(
                    _error(
                        "value_not_in_list",
                        "Value not in list",
                        f"{name}: '{value}' not in {kind}",
                        input_name=name,
                        received_value=value,
                    )
                )
        result = (valid and not errors, errors)
        validated[node_id] = result
        return result

    # -- the queue (execution.py PromptQueue) ------------------------------------------------

    def put(self, item: tuple) -> None:
        with self.mutex:
            heapq.heappush(self.queue, item)
            self.queue_updated()
            self.not_empty.notify()

    def _worker(self) -> None:
        while not self._stopping:
            with self.not_empty:
                while not self.queue and not self._stopping:
                    self.not_empty.wait(0.5)
                if self._stopping:
                    return
                item = heapq.heappop(self.queue)
                index = self.task_counter
                self.running[index] = copy.deepcopy(item)
                self.task_counter += 1
                self.queue_updated()
            success, messages, outputs = self.execute(item[1], item[2], item[3], item[4])
            with self.mutex:
                prompt = self.running.pop(index)
                self.history[prompt[1]] = {
                    "prompt": prompt,
                    "outputs": outputs,
                    "status": {
                        "status_str": "success" if success else "error",
                        "completed": success,
                        "messages": messages,
                    },
                    "meta": {},
                }
                self.history_written.notify_all()
                self.queue_updated()
            if self.client_id is not None:
                self.send_sync("executing", {"node": None, "prompt_id": item[1]}, self.client_id)

    # -- execution (execution.py PromptExecutor.execute, main.py hijack_progress) ------------

    def execute(self, prompt_id: str, prompt: dict, extra: dict, outputs: list[str]):
        self.interrupt_flag = False
        self.client_id = extra.get("client_id")
        method = extra.get("preview_method") if self.knobs.per_prompt_preview_method else None
        messages: list = []

        def add_message(event: str, data: dict, broadcast: bool) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            if self.client_id is not None or broadcast:
                self.send_sync(event, data, self.client_id)

        add_message("execution_start", {"prompt_id": prompt_id}, False)
        signatures = {node_id: self._signature(prompt, node_id) for node_id in prompt}
        live = set(signatures.values())
        self.cache = {key: value for key, value in self.cache.items() if key in live}
        cached = [node_id for node_id in prompt if signatures[node_id] in self.cache]
        add_message("execution_cached", {"nodes": cached, "prompt_id": prompt_id}, False)
        results: dict[str, Any] = {}
        ui_outputs: dict[str, Any] = {}
        executed: list[str] = []
        success = True
        for node_id in self._order(prompt, outputs):
            node = prompt[node_id]
            signature = signatures[node_id]
            if signature in self.cache:
                results[node_id], ui = self.cache[signature]
                if ui:  # replayed from the cache
                    ui_outputs[node_id] = ui
                    self._executed(node_id, ui, prompt_id)
                continue
            self.last_node_id = node_id
            if self.client_id is not None:
                self.send_sync(
                    "executing",
                    {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                    self.client_id,
                )
            inputs = {
                key: results[value[0]][value[1]] if isinstance(value, list) else value
                for key, value in node["inputs"].items()
            }
            try:
                result, ui = self._run_node(node["class_type"], inputs, prompt_id, node_id, method)
            except Interrupted:
                add_message(
                    "execution_interrupted",
                    {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": node["class_type"],
                        "executed": executed,
                    },
                    True,
                )
                success = False
                break
            except NodeFailure as error:
                tips = OOM_TIPS if "OutOfMemory" in error.exception_type else ""
                add_message(
                    "execution_error",
                    {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": node["class_type"],
                        "executed": executed,
                        "exception_message": f"{error}\n{tips}",
                        "exception_type": error.exception_type,
                        "traceback": ['  File "nodes.py", line 1, in sample\n'],
                        "current_inputs": {},
                        "current_outputs": [],
                    },
                    False,
                )
                success = False
                break
            self.cache[signature] = (result, ui)
            results[node_id] = result
            if ui:
                ui_outputs[node_id] = ui
                self._executed(node_id, ui, prompt_id)
            executed.append(node_id)
        else:
            add_message("execution_success", {"prompt_id": prompt_id}, False)
        self.last_node_id = None
        return success, messages, ui_outputs

    def _executed(self, node_id: str, ui: dict, prompt_id: str) -> None:
        if self.client_id is not None:
            data = {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": prompt_id}
            self.send_sync("executed", data, self.client_id)

    def _signature(self, prompt: dict, node_id: str) -> Any:
        node = prompt[node_id]
        parts = [node["class_type"]]
        for key in sorted(node["inputs"]):
            value = node["inputs"][key]
            if isinstance(value, list):
                parts.append((key, self._signature(prompt, value[0]), value[1]))
            else:
                parts.append((key, json.dumps(value)))
        return tuple(parts)

    def _order(self, prompt: dict, outputs: list[str]) -> list[str]:
        order: list[str] = []

        def visit(node_id: str) -> None:
            if node_id in order:
                return
            for value in prompt[node_id]["inputs"].values():
                if isinstance(value, list):
                    visit(value[0])
            order.append(node_id)

        for output in sorted(outputs, key=lambda n: (len(n), n)):
            visit(output)
        return order

    def _run_node(self, class_type: str, inputs: dict, prompt_id: str, node_id: str, method):
        if class_type == "CheckpointLoaderSimple":
            name = inputs["ckpt_name"]
            return (("model", name), ("clip", name), ("vae", name)), None
        if class_type == "CLIPTextEncode":
            return (("cond", inputs["clip"][1], inputs["text"]),), None
        if class_type == "EmptyLatentImage":
            return (("latent", inputs["width"], inputs["height"]),), None
        if class_type == "KSampler":
            return (self._sample(inputs, prompt_id, node_id, method),), None
        if class_type == "VAEDecode":
            return (self._decode(inputs["samples"]),), None
        if class_type == "LoadImage":
            name = inputs["image"]
            subfolder, _, filename = name.rpartition("/")
            data = self.files.get(("input", subfolder, filename))
            if data is None:
                raise NodeFailure("FileNotFoundError", f"Invalid image file: {name}")
            with PIL.Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB"), np.float32) / 255
            return (pixels, None), None
        if class_type == "LoadImageMask":
            name = inputs["image"]
            subfolder, _, filename = name.rpartition("/")
            data = self.files.get(("input", subfolder, filename))
            if data is None:
                raise NodeFailure("FileNotFoundError", f"Invalid image file: {name}")
            with PIL.Image.open(io.BytesIO(data)) as image:
                band = image.convert("RGBA").getchannel(inputs["channel"][0].upper())
                mask = np.asarray(band, np.float32) / 255
            return ((1.0 - mask) if inputs["channel"] == "alpha" else mask,), None
        if class_type == "SetLatentNoiseMask":
            samples, mask = inputs["samples"], inputs["mask"]
            height, width = samples[3].shape[:2]
            small = PIL.Image.fromarray((mask * 255).astype(np.uint8)).resize(
                (width, height), PIL.Image.Resampling.BILINEAR
            )
            noise_mask = (np.asarray(small, np.float64) / 255)[..., None]
            return ((*samples[:4], noise_mask),), None
        if class_type == "VAEEncode":
            pixels = inputs["pixels"]
            height, width = pixels.shape[0] // 8 * 8, pixels.shape[1] // 8 * 8
            small = PIL.Image.fromarray((pixels * 255).astype(np.uint8)).resize(
                (max(1, width // 8), max(1, height // 8)), PIL.Image.Resampling.BOX
            )
            latent = np.asarray(small, np.float64) / 255
            return (("encoded", width, height, latent),), None
        if class_type in ("SaveImage", "PreviewImage"):
            kind = "output" if class_type == "SaveImage" else "temp"
            return (), {"images": [self._save(inputs, kind)]}
        raise NodeFailure("KeyError", class_type)

    def _sample(self, inputs: dict, prompt_id: str, node_id: str, method) -> Any:
        if self.knobs.fail_next is not None:
            failure, self.knobs.fail_next = self.knobs.fail_next, None
            raise NodeFailure(*failure)
        latent_image = inputs["latent_image"]
        width, height = latent_image[1], latent_image[2]
        self.sampled.append(
            {
                "denoise": inputs["denoise"],
                "steps": inputs["steps"],
                **{"size": (width, height), "from_image": latent_image[0] == "encoded"},
                **({"masked": True} if len(latent_image) > 4 else {}),
            }
        )
        rng = np.random.default_rng(
            seed_of(
                inputs["model"][1],
                inputs["positive"][2],
                inputs["negative"][2],
                inputs["seed"],
                inputs["steps"],
                inputs["cfg"],
                inputs["sampler_name"],
                inputs["scheduler"],
            )
        )
        latent_shape = (max(1, height // 8), max(1, width // 8), 3)
        target = rng.random(latent_shape)
        noise = rng.random(latent_shape)
        steps = int(inputs["steps"])
        for step in range(steps):
            time.sleep(self.knobs.step_delay)
            while self.knobs.stall and not self.interrupt_flag:
                time.sleep(0.01)
            mix = (step + 1) / steps
            estimate = noise * (1 - mix) + target * mix
            if latent_image[0] == "encoded":  # from the input, noised to the denoise level
                init, denoise = latent_image[3], float(inputs["denoise"])
                start = init * (1 - denoise) + noise * denoise
                end = init * (1 - denoise) + target * denoise
                estimate = start * (1 - mix) + end * mix
                if len(latent_image) > 4:  # a noise mask: the input kept where it is 0
                    keep = latent_image[4]
                    estimate = estimate * keep + init * (1 - keep)
            self._progress(step + 1, steps, estimate, prompt_id, node_id, method)
        if latent_image[0] == "encoded":
            init, denoise = latent_image[3], float(inputs["denoise"])
            result = init * (1 - denoise) + target * denoise
            if len(latent_image) > 4:
                result = result * latent_image[4] + init * (1 - latent_image[4])
            return ("sampled", result)
        return ("sampled", target)

    def _progress(self, value, total, estimate, prompt_id, node_id, method) -> None:
        """main.py's hijack_progress hook and WebUIProgressHandler.update_handler."""
        if self.interrupt_flag:
            raise Interrupted()
        sid = self.client_id
        preview = None
        if method in PREVIEW_METHODS:
            preview = PIL.Image.fromarray((estimate * 255).astype(np.uint8))
        node_state = {
            "value": value,
            "max": total,
            "state": "running",
            "node_id": node_id,
            "prompt_id": prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }
        self.send_sync(
            "progress_state", {"prompt_id": prompt_id, "nodes": {node_id: node_state}}, sid
        )
        with_metadata = self.flags.get(sid, {}).get("supports_preview_metadata") is True
        if preview is not None and with_metadata:
            metadata = {
                "node_id": node_id,
                "prompt_id": prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": "image/jpeg",
            }
            meta = json.dumps(metadata).encode()
            self.send_sync(
                PREVIEW_IMAGE_WITH_METADATA,
                struct.pack(">I", len(meta)) + meta + self._jpeg(preview),
                sid,
            )
        self.send_sync(
            "progress", {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id}, sid
        )
        if preview is not None and not with_metadata:
            self.send_sync(PREVIEW_IMAGE, struct.pack(">I", 1) + self._jpeg(preview), sid)
        if self.knobs.garbage and value == 1:
            for junk in (
                "}{ not json",
                json.dumps(
                    {
                        "type": "progress",
                        "data": {"value": "x", "max": None, "prompt_id": prompt_id},
                    }
                ),
                json.dumps({"type": "mystery", "data": 5}),
                json.dumps([1, 2, 3]),
                b"\x00\x01",
                struct.pack(">II", PREVIEW_IMAGE, 9) + b"??",
                struct.pack(">I", 3) + b"\x00\x00\x00\x01" + b"5" + b"text",
                struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 9999) + b"{}",
            ):
                self.send_sync("junk", junk, sid)
        if self.knobs.drop_socket_at_step == value:
            self.knobs.drop_socket_at_step = None
            self.send_sync("__close__", None, sid)

    def _jpeg(self, image: PIL.Image.Image) -> bytes:
        size = self.knobs.preview_size
        image = PIL.ImageOps.contain(image, (size, size), PIL.Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        return buffer.getvalue()

    def _decode(self, samples: Any) -> np.ndarray:
        _, latent = samples
        height, width = latent.shape[0] * 8, latent.shape[1] * 8
        small = PIL.Image.fromarray((latent * 255).astype(np.uint8))
        return np.asarray(small.resize((width, height), PIL.Image.Resampling.BICUBIC))

    def _save(self, inputs: dict, kind: str) -> dict[str, str]:
        self.file_counter += 1
        prefix = inputs.get("filename_prefix", "ComfyUI") if kind == "output" else "ComfyUI_temp"
        filename = f"{prefix}_{self.file_counter:05}_.png"
        buffer = io.BytesIO()
        PIL.Image.fromarray(inputs["images"]).save(buffer, format="PNG", compress_level=1)
        self.files[(kind, "", filename)] = buffer.getvalue()
        return {"filename": filename, "subfolder": "", "type": kind}

    # -- for tests ---------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is queued or running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.mutex:
                if not self.queue and not self.running:
                    return
            time.sleep(0.01)
        raise TimeoutError("the fake ComfyUI is still busy")

    def recorded(self, prompt_id: str, ceiling: float = 30.0) -> dict:
        """The prompt's history entry, once written. As ComfyUI's worker, the fake writes it
        after the run's last message, which the backend may already have finished on: a test
        reading ``history`` right after a run could find no entry (seen under full load).
        ``ceiling`` only keeps a broken test from hanging."""
        with self.history_written:
            if not self.history_written.wait_for(lambda: prompt_id in self.history, ceiling):
                raise TimeoutError(f"the fake ComfyUI recorded no history of {prompt_id}")
            return self.history[prompt_id]

    def outcome(self, prompt_id: str) -> str | None:
        """'success' or 'error' once the prompt has ended, else None."""
        with self.mutex:
            entry = self.history.get(prompt_id)
            return entry["status"]["status_str"] if entry else None

    def events_of(self, prompt_id: str) -> list[str]:
        """The events the prompt's history recorded (execution_start, ..._success/error)."""
        with self.mutex:
            entry = self.history.get(prompt_id)
            return [event for event, _ in entry["status"]["messages"]] if entry else []


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


async def _quietly(send) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # a socket closing meanwhile
        await send


def graph(
    prompt: str = "a cat",
    *,
    steps: int = 4,
    seed: int = 1,
    width: int = 64,
    height: int = 64,
    checkpoint: str = "sd15.safetensors",
) -> dict[str, Any]:
    """A text-to-image graph in API format, as another ComfyUI client would submit it."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["4", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
                "denoise": 1.0,
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"images": ["8", 0], "filename_prefix": "other"},
        },
    }


class OtherClient:
    """Another ComfyUI client (as ComfyUI's own websockets_api_example.py is): its own socket
    and client id; it records every frame its socket receives."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.url = url
        self.client_id = uuid.uuid4().hex
        self.frames: list[str | bytes] = []
        self._socket = connect(url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for frame in self._socket:
                self.frames.append(frame)
        except ConnectionClosed:
            pass

    def submit(self, prompt: dict[str, Any], **extra: Any) -> str:
        import httpx

        prompt_id = uuid.uuid4().hex
        body = {"prompt": prompt, "client_id": self.client_id, "prompt_id": prompt_id}
        body["extra_data"] = extra
        httpx.post(self.url + "/prompt", json=body, timeout=10).raise_for_status()
        return prompt_id

    def prompt_ids(self) -> set[str]:
        """The prompt ids named in the messages this client received."""
        ids = set()
        for frame in self.frames:
            if isinstance(frame, str):
                data = json.loads(frame).get("data")
                if isinstance(data, dict) and isinstance(data.get("prompt_id"), str):
                    ids.add(data["prompt_id"])
        return ids

    def previews(self) -> int:
        return sum(1 for frame in self.frames if isinstance(frame, bytes))

    def close(self) -> None:
        self._socket.close()
        self._thread.join(5)


# -- driving a ComfyUI backend against it ----------------------------------------------------

REQUEST = {"prompt": "a red fox", "steps": 4, "width": 64, "height": 64, "seed": 7}


def comfy_backend(url: str, **fields: Any) -> ComfyUIBackend:
    """A backend for the ComfyUI at ``url`` (endpoint id 'studio', a short deadline)."""
    return ComfyUIBackend(
        Endpoint(**{"id": "studio", "kind": "comfyui", "url": url, "timeout": 20, **fields})
    )


def run(
    backend: ComfyUIBackend,
    on_event: Callable[[Any, RunControl], None] | None = None,
    **fields: Any,
) -> list:
    """Validate the request (``REQUEST`` with ``fields`` over it), run it to its end and return
    its events; ``on_event(event, control)`` sees each as it comes (to press Stop, say)."""
    request = validate_request(build_request(backend, {**REQUEST, **fields}), backend)
    control = RunControl()
    events = []
    for event in backend.generate(request, control):
        events.append(event)
        if on_event is not None:
            on_event(event, control)
    return events


def steps(events: list) -> list[Step]:
    return [event for event in events if isinstance(event, Step)]


def statuses(events: list) -> list[Status]:
    return [event for event in events if isinstance(event, Status)]


def finished(events: list) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def failed(events: list) -> Failed:
    assert isinstance(events[-1], Failed), events[-1]
    return events[-1]


def eventually(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Wait for ``condition()`` to be truthy and return it (for what happens on a thread)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("the condition did not come true in time")
