"""A loopback AUTOMATIC1111 server for tests, served by the standard library's threaded HTTP server.

It reproduces the HTTP API of AUTOMATIC1111 1.10 (and, with ``flavor="forge"``, Forge) as their
sources define it, with numpy drawing the images instead of a model:

- ``modules/api/api.py``: ``POST /sdapi/v1/txt2img`` adds its task to the queue, then runs under
  one global queue lock (``state.begin()``, ``start_task``, ``process_images``, ``finish_task``
  only on success, ``state.end()``), so concurrent requests block in the server's thread pool
  and a second client's job really runs first. ``GET /sdapi/v1/progress`` is the *global*
  state. ``/interrupt`` sets ``state.interrupted`` for whatever job runs. ``sd-models``,
  ``samplers``, ``schedulers``, ``options``. Errors are ``{"error", "detail", "body",
  "errors"}`` with the exception's status; ``--api-auth`` is HTTP Basic on ``/sdapi/*`` only.
  Forge refuses an unknown ``sd_model_checkpoint`` override with a 500 ``RuntimeError``.
- ``modules/progress.py``: ``POST /internal/progress`` per task id: active, queued ("In queue:
  i/n"), completed (the last 16), progress, eta, and a live preview as a data URL when its id
  changed.
- ``modules/shared_state.py``: previews are made lazily when a poll arrives and
  ``sampling_step - current_image_sampling_step >= show_progress_every_n_steps``;
  ``id_live_preview`` counts them; ``begin()`` clears ``interrupted``.
- ``modules/processing.py``: ``override_settings`` applied and restored afterwards; an override
  checkpoint AUTOMATIC1111 cannot find is dropped silently (the loaded one runs); the sampler
  callback sets ``sampling_step`` to the 0-based index of the step just done; an interrupt
  stops sampling and the images are decoded from the current estimate; a batch comes back
  with a grid first when ``return_grid`` is on.

``POST /sdapi/v1/img2img`` (``modules/api/api.py`` ``img2imgapi``, ``modules/processing.py``
``StableDiffusionProcessingImg2Img``, ``modules/sd_samplers_common.py`` ``setup_img2img_steps``,
``modules/sd_samplers_kdiffusion.py`` ``sample_img2img``; AUTOMATIC1111 v1.10 line): no
``init_images`` is a 404 "Init image not found", an undecodable one a 500 "Invalid encoded
image"; the input (and the mask) are resized to ``width`` x ``height`` (``resize_mode`` 0);
the sampler runs ``t_enc + 1`` steps, ``t_enc = int(min(denoising_strength, 0.999) * steps)``,
and ``sampling_steps`` is that count. The "model" starts from the input noised to the strength
and keeps the input outside a mask (``inpainting_fill`` 1, "original").

Checked against Forge @dfdcbab685e5 (2025-06-26: ``webui.py``, ``modules/progress.py``,
``modules/shared_state.py``, ``modules/sd_samplers_common.py``, ``modules/processing.py``,
``modules/sysinfo.py``) and AUTOMATIC1111 (``modules/api/api.py`` @2fec947: ``get_config``,
``progressapi``; ``process_images``' ``stored_opts`` and ``store_latent`` of the v1.10 line,
the same lines as Forge's; ``webui.py``: ``api_only`` creates the API alone; ``progress.py``
@66aaa2b and ``shared_state.py`` @f2844bd), which behave alike in what follows:

- ``webui=False`` is ``--nowebui``: ``webui.py api_only_worker`` creates only the API, and
  ``progress.setup_progress_api`` (``/internal/progress``) and ``ui.setup_ui_api``
  (``/internal/ping``) are called only on the web UI's app, so those answer 404.
- The options are ``opts.data`` (what ``config.json`` holds) over the defaults. ``GET
  /sdapi/v1/options`` returns ``opts.data`` only (``get_config``), and ``process_images``
  stores for restoring only the overrides already in ``opts.data`` (``stored_opts = {...
  if k in opts.data}``); applying an override puts it in ``opts.data`` (``opts.set``). So on a
  fresh server (``fresh=True``: no ``config.json``, only the loaded checkpoint saved) an
  override of a default it never saved stays after the run.
- ``callback_state`` sets ``sampling_step`` to the 0-based index of the step just done, so
  ``progress`` is 0 before step 1 and still 0 after it; ``set_current_image`` decodes when
  ``sampling_step - current_image_sampling_step >= show_progress_every_n_steps``, so with 1 the
  first preview comes after step 2, and with 0 a preview comes at every poll once a latent is
  stored (step 1 on).
- ``lowvram=True`` is --lowvram / --medvram on AUTOMATIC1111 (``lowvram.apply`` turns
  ``parallel_processing_allowed`` off; Forge never does): no decode at a poll, but
  ``store_latent`` decodes in the sampler when ``sampling_step % n == 0`` and ``n > 0``, with
  ``sampling_step`` still the previous step's. ``GET /sdapi/v1/cmd-flags`` shows the flag.

Tests inject faults through ``FakeA1111.faults`` and read what happened in ``jobs`` and
``interrupts``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import math
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import PIL.Image

CHECKPOINTS = [
    {
        "title": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
        "model_name": "v1-5-pruned-emaonly",
        "hash": "6ce0161689",
        "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
        "filename": "/srv/webui/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
        "config": None,
    },
    {
        "title": "anime/counterfeit-v3.safetensors [cbfba64e66]",
        "model_name": "anime_counterfeit-v3",
        "hash": "cbfba64e66",
        "sha256": "cbfba64e662e0f3ab9d5d3d4f0c4a1ad08c6a6c1dd8f1e6bd3d4c1d9b4b1c8f0",
        "filename": "/srv/webui/models/Stable-diffusion/anime/counterfeit-v3.safetensors",
        "config": None,
    },
]
SAMPLERS = [
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {"scheduler": "karras"}},
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
]
SCHEDULERS = [
    {"name": "automatic", "label": "Automatic", "aliases": None},
    {"name": "karras", "label": "Karras", "aliases": ["Karras"]},
    {"name": "exponential", "label": "Exponential", "aliases": None},
]
DEFAULT_OPTIONS = {
    "sd_model_checkpoint": CHECKPOINTS[0]["title"],
    "live_previews_enable": True,
    "show_progress_every_n_steps": 10,
    "show_progress_grid": True,
    "show_progress_type": "Approx NN",
    "live_previews_image_format": "png",
    "samples_format": "png",
    "return_grid": True,
}


class ApiError(Exception):
    """An exception the API's handler turns into ``{"error", "detail", "body", "errors"}``."""

    def __init__(self, status: int, name: str, errors: str, detail: Any = "") -> None:
        super().__init__(errors)
        self.status, self.name, self.errors, self.detail = status, name, errors, detail

    def json(self) -> dict[str, Any]:
        return {"error": self.name, "detail": self.detail, "body": "", "errors": self.errors}


def http_exception(status: int, detail: str) -> ApiError:
    """FastAPI's ``HTTPException`` as the API's handler reports it."""
    return ApiError(status, "HTTPException", f"{status}: {detail}", detail)


@dataclass
class Faults:
    """What goes wrong next. Counters count down as they are used."""

    txt2img_error: tuple[int, str, str] | None = None
    """(status, exception name, message) raised inside the next job (``finish_task`` is then
    never called, as in the real server)."""
    drop_at_step: int | None = None
    """Close the next job's connection without an answer when it reaches this step."""
    garbage_answer: bool = False
    """Answer the next txt2img with a 200 HTML page instead of JSON."""
    progress_errors: int = 0
    """The next /internal/progress calls fail with a 500 (NaN in the answer, #13225)."""
    progress_garbage: int = 0
    """The next /internal/progress calls answer 200 with HTML."""
    hold_after_step: tuple[int, int] | None = None
    """(step, polls): the next job waits after its step ``step`` (1-based) until
    /internal/progress has been asked ``polls`` more times, so that a test sees that step
    whatever the machine's speed."""


@dataclass
class Job:
    """One generation, as the tests read it afterwards."""

    task_id: str
    prompt: str
    steps: int
    checkpoint: str
    started: float
    ended: float | None = None
    steps_done: int = 0
    interrupted: bool = False
    kind: str = "txt2img"
    size: tuple[int, int] | None = None
    """The size made (``width`` x ``height``)."""
    init_size: tuple[int, int] | None = None
    """img2img: the size of the input image as sent, before the server resized it."""
    strength: float | None = None
    mask_size: tuple[int, int] | None = None
    """img2img: the size of the mask as sent (None: no mask)."""
    sampling_steps: int = 0


@dataclass
class Interrupt:
    """One ``POST /sdapi/v1/interrupt``: when, and which task was running then."""

    at: float
    current_task: str | None
    sampling_step: int


@dataclass
class _State:
    """``modules/shared_state.State``, the fields the API shows."""

    skipped: bool = False
    interrupted: bool = False
    job: str = ""
    job_count: int = 0
    job_no: int = 0
    job_timestamp: str = "0"
    sampling_step: int = 0
    sampling_steps: int = 0
    current_latent: tuple | None = None
    current_image: PIL.Image.Image | None = None
    current_image_sampling_step: int = 0
    id_live_preview: int = 0
    textinfo: str | None = None
    time_start: float = field(default_factory=time.time)

    def dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "job": self.job,
            "job_count": self.job_count,
            "job_timestamp": self.job_timestamp,
            "job_no": self.job_no,
            "sampling_step": self.sampling_step,
            "sampling_steps": self.sampling_steps,
        }


class FakeA1111:
    """The server. ``start()`` returns its URL; ``stop()`` ends every job and closes it."""

    def __init__(
        self,
        *,
        flavor: str = "a1111",
        auth: tuple[str, str] | None = None,
        step_time: float = 0.02,
        api: bool = True,
        preview_scale: float = 1.0,
        webui: bool = True,
        fresh: bool = False,
        lowvram: bool = False,
    ) -> None:
        self.flavor, self.auth, self.step_time, self.api = flavor, auth, step_time, api
        self.preview_scale = preview_scale
        self.webui = webui
        self.cmd_flags = {"api": True, "nowebui": not webui, "lowvram": lowvram, "medvram": False}
        """``GET /sdapi/v1/cmd-flags`` (``vars(cmd_opts)``, the flags that matter here)."""
        self.parallel_processing_allowed = not lowvram
        """AUTOMATIC1111's ``lowvram.apply`` turns it off for --lowvram / --medvram: previews
        are then decoded in the sampler (``store_latent``), never at a poll."""
        self.opts: dict[str, Any] = dict(DEFAULT_OPTIONS)
        """The options in effect: ``opts.data`` over the defaults."""
        self.saved: set[str] = {"sd_model_checkpoint"} if fresh else set(DEFAULT_OPTIONS)
        """The keys of ``opts.data`` (what ``config.json`` would hold)."""
        self.checkpoints = [dict(c) for c in CHECKPOINTS]
        self.faults = Faults()
        self.jobs: list[Job] = []
        self.interrupts: list[Interrupt] = []
        self.requests: list[tuple[str, str]] = []
        self.progress_polls = 0
        """How many times /internal/progress was asked."""
        self.lockstep_polls = 0
        """When above 0, each job waits after every step until /internal/progress has been
        asked that many more times, so that a test sees every step whatever the machine's
        speed (2: at least one whole answer per step)."""
        self.authorizations: set[str | None] = set()
        """Every ``Authorization`` header the server was sent (None: a request without one)."""
        self.state = _State()
        self.current_task: str | None = None
        self.pending_tasks: dict[str, float] = {}
        self.finished_tasks: list[str] = []
        self._lock = threading.RLock()  # guards everything above
        self.queue_lock = threading.Lock()
        self._job_spec: dict[str, Any] | None = None
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        return self.start_on(0)

    def start_on(self, port: int) -> str:
        """Serve on ``port`` of 127.0.0.1 (0: any free port); returns the URL."""
        server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._closing = True
        with self._lock:
            self.state.interrupted = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no job runs and none waits (a test's leftovers are gone)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                # finish_task is never called for a job that raised, so its task stays
                # "current" until the next one starts, as in the real server: look at the job.
                if not self.pending_tasks and not self.state.job:
                    return
            time.sleep(0.01)
        raise AssertionError(f"the fake server is still busy: {self.current_task}")

    def job(self, task_id: str) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs if j.task_id == task_id), None)

    # -- checkpoints and options -------------------------------------------------------------

    def checkpoint(self, name: str | None) -> dict[str, Any] | None:
        """``sd_models.checkpoint_aliases.get(name)``."""
        for entry in self.checkpoints:
            file = entry["filename"].rsplit("/", 1)[-1]
            aliases = {
                entry["title"],
                entry["model_name"],
                entry["hash"],
                entry["sha256"],
                entry["title"].split(" [")[0],
                file.rsplit(".", 1)[0],
            }
            if name in aliases:
                return entry
        return None

    # -- the API -----------------------------------------------------------------------------

    def img2img(self, handler: _Handler, body: dict[str, Any]) -> Any:
        """``img2imgapi``: the input decoded (and the mask), then as txt2img."""
        _check_types(body)
        init_images = body.get("init_images")
        if init_images is None:
            raise http_exception(404, "Init image not found")
        if not isinstance(init_images, list) or not init_images:
            raise _Validation(
                [{"loc": ["body", "init_images"], "msg": "value is not a valid list", "type": "x"}]
            )
        edit = {
            "init": _decode_base64(init_images[0]),
            "strength": float(body.get("denoising_strength", 0.75)),
            "mask": _decode_base64(body["mask"]) if body.get("mask") else None,
        }
        return self.txt2img(handler, body, edit)

    def txt2img(self, handler: _Handler, body: dict[str, Any], edit: Any = None) -> Any:
        if edit is None:
            _check_types(body)
        task_id = body.get("force_task_id") or f"task({secrets.token_hex(8)})"
        overrides = dict(body.get("override_settings") or {})
        wanted = overrides.get("sd_model_checkpoint")
        if self.flavor == "forge" and wanted is not None and self.checkpoint(wanted) is None:
            raise ApiError(500, "RuntimeError", f"model {wanted!r} not found")
        sampler = body.get("sampler_name") or body.get("sampler_index") or "Euler"
        if not any(sampler == s["name"] or sampler in s["aliases"] for s in SAMPLERS):
            raise http_exception(400, "Sampler not found")
        with self._lock:
            self.pending_tasks[task_id] = time.time()  # add_task_to_queue
        with self.queue_lock:
            with self._lock:
                self._begin("scripts_img2img" if edit else "scripts_txt2img")
                self.current_task = task_id  # start_task
                self.pending_tasks.pop(task_id, None)
            try:
                images, info = self._process_images(handler, task_id, body, overrides, edit)
                with self._lock:
                    self.finished_tasks = [*self.finished_tasks, task_id][-16:]  # finish_task
                    if self.current_task == task_id:
                        self.current_task = None
            finally:
                with self._lock:
                    self.state.job, self.state.job_count = "", 0  # state.end()
        fault_garbage = self._take("garbage_answer")
        if fault_garbage:
            return _Raw(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        return {"images": images, "parameters": body, "info": json.dumps(info)}

    def _process_images(
        self,
        handler: _Handler,
        task_id: str,
        body: dict[str, Any],
        overrides: dict[str, Any],
        edit: dict[str, Any] | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        with self._lock:  # stored_opts: only what opts.data already holds is restored
            stored = {key: self.opts.get(key) for key in overrides if key in self.saved}
        restore = body.get("override_settings_restore_afterwards", True)
        try:
            if self.checkpoint(overrides.get("sd_model_checkpoint")) is None:
                overrides.pop("sd_model_checkpoint", None)  # dropped silently
            with self._lock:
                self.opts.update(overrides)
                self.saved.update(overrides)  # opts.set puts each in opts.data
                loaded = self.opts["sd_model_checkpoint"]
                checkpoint = self.checkpoint(loaded) or self.checkpoints[0]
            failure = self._take("txt2img_error")
            if failure:
                raise ApiError(failure[0], failure[1], failure[2])
            return self._sample(handler, task_id, body, checkpoint, edit)
        finally:
            if restore:
                with self._lock:
                    self.opts.update(stored)

    def _sample(
        self,
        handler: _Handler,
        task_id: str,
        body: dict[str, Any],
        checkpoint: dict[str, Any],
        edit: dict[str, Any] | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        steps = int(body.get("steps", 50))
        asked_steps = steps
        width, height = int(body.get("width", 512)), int(body.get("height", 512))
        batch = int(body.get("batch_size", 1))
        seed = int(body.get("seed", -1))
        seed = secrets.randbelow(4294967294) if seed == -1 else seed
        prompt = str(body.get("prompt", ""))
        spec = {
            "prompt": prompt,
            "seeds": [seed + n for n in range(batch)],
            "width": width,
            "height": height,
            "steps": steps,
            "checkpoint": checkpoint["model_name"],
        }
        job = Job(task_id, prompt, steps, checkpoint["model_name"], time.monotonic())
        job.size = (width, height)
        if edit is not None:  # setup_img2img_steps, img2img_fix_steps off
            strength = edit["strength"]
            steps = int(min(strength, 0.999) * steps) + 1
            job.kind, job.strength = "img2img", strength
            job.init_size = edit["init"].size
            job.mask_size = edit["mask"].size if edit["mask"] is not None else None
            spec.update(
                steps=steps,
                strength=strength,
                init=np.asarray(edit["init"].convert("RGB").resize((width, height)), np.float32),
                mask=None
                if edit["mask"] is None
                else np.asarray(edit["mask"].convert("L").resize((width, height))) >= 128,
            )
        job.sampling_steps = steps
        drop_at = self._take("drop_at_step")
        hold = self._take("hold_after_step")
        with self._lock:
            self.jobs.append(job)
            self._job_spec = spec
            self.state.job_count = 1
            self.state.sampling_steps, self.state.sampling_step = steps, 0
        done = 0
        try:
            for index in range(steps):
                with self._lock:
                    stop = self.state.interrupted or self.state.skipped or self._closing
                if stop:
                    job.interrupted = True
                    break
                if drop_at is not None and index == drop_at:
                    handler.drop_connection()
                    raise _Dropped
                time.sleep(self.step_time)
                with self._lock:
                    self._store_latent((task_id, index))  # in the step, sampling_step stale
                    self.state.sampling_step = index
                done = index + 1
                job.steps_done = done
                if hold is not None and done == hold[0]:
                    self._hold(hold[1])
                elif self.lockstep_polls:
                    self._hold(self.lockstep_polls)
            with self._lock:
                self.state.job_no += 1  # state.nextjob()
                self.state.sampling_step = 0
        finally:
            job.ended = time.monotonic()
        fraction = done / steps if steps else 1.0
        images = [render(spec, n, fraction) for n in range(batch)]
        encoded = [_png_base64(image) for image in images]
        first = 0
        if batch > 1 and self.opts.get("return_grid"):
            encoded.insert(0, _png_base64(_grid(images)))
            first = 1
        info = {
            "prompt": prompt,
            "all_prompts": [prompt] * batch,
            "negative_prompt": body.get("negative_prompt", ""),
            "seed": seed,
            "all_seeds": spec["seeds"],
            "width": width,
            "height": height,
            "sampler_name": body.get("sampler_name") or "Euler",
            "cfg_scale": body.get("cfg_scale", 7.0),
            "steps": asked_steps,
            "batch_size": batch,
            "sd_model_name": checkpoint["filename"].rsplit("/", 1)[-1].rsplit(".", 1)[0],
            "sd_model_hash": checkpoint["hash"],
            "index_of_first_image": first,
            "infotexts": [f"{prompt}\nSteps: {asked_steps}, Seed: {s}" for s in spec["seeds"]],
            "denoising_strength": edit["strength"] if edit else None,
            "job_timestamp": self.state.job_timestamp,
        }
        return encoded, info

    def _hold(self, polls: int) -> None:
        with self._lock:
            until = self.progress_polls + polls
        while not self._closing:
            with self._lock:
                if self.progress_polls >= until or self.state.interrupted:
                    return
            time.sleep(0.005)

    def internal_progress(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.progress_polls += 1
        if self._take("progress_errors"):
            raise ApiError(500, "ValueError", "Out of range float values are not JSON compliant")
        if self._take("progress_garbage"):
            return _Raw(200, b"<html>oops</html>", "text/html")
        task_id = body.get("id_task")
        last_preview = body.get("id_live_preview", -1)
        with self._lock:
            active = task_id == self.current_task
            queued = task_id in self.pending_tasks
            completed = task_id in self.finished_tasks
            if not active:
                text = "Waiting..."
                if queued:
                    order = sorted(self.pending_tasks, key=lambda t: self.pending_tasks[t])
                    text = f"In queue: {order.index(task_id) + 1}/{len(order)}"
                return {
                    "active": False,
                    "queued": queued,
                    "completed": completed,
                    "progress": None,
                    "eta": None,
                    "live_preview": None,
                    "id_live_preview": -1,
                    "textinfo": text,
                }
            state = self.state
            progress = 0.0
            if state.job_count > 0:
                progress += state.job_no / state.job_count
            if state.sampling_steps > 0 and state.job_count > 0:
                progress += state.sampling_step / state.sampling_steps / state.job_count
            progress = min(progress, 1.0)
            elapsed = time.time() - state.time_start
            eta = elapsed / progress - elapsed if progress > 0 else None
            live_preview, preview_id = None, last_preview
            if self.opts["live_previews_enable"] and body.get("live_preview", True):
                self._set_current_image()
                if state.id_live_preview != last_preview and state.current_image is not None:
                    fmt = self.opts["live_previews_image_format"]
                    data = _encode(state.current_image, fmt)
                    live_preview = f"data:image/{fmt};base64,{data}"
                    preview_id = state.id_live_preview
            return {
                "active": True,
                "queued": queued,
                "completed": completed,
                "progress": progress,
                "eta": eta,
                "live_preview": live_preview,
                "id_live_preview": preview_id,
                "textinfo": state.textinfo,
            }

    def global_progress(self, query: str) -> dict[str, Any]:
        """``GET /sdapi/v1/progress``: whatever job runs, whoever sent it."""
        with self._lock:
            state = self.state
            if state.job_count == 0:
                return {
                    "progress": 0,
                    "eta_relative": 0,
                    "state": state.dict(),
                    "current_image": None,
                    "textinfo": state.textinfo,
                }
            progress = 0.01 + state.job_no / max(state.job_count, 1)
            if state.sampling_steps > 0:
                progress += state.sampling_step / state.sampling_steps / max(state.job_count, 1)
            elapsed = time.time() - state.time_start
            self._set_current_image()
            image = None
            if state.current_image is not None and "skip_current_image=true" not in query:
                image = _encode(state.current_image, "png")
            return {
                "progress": min(progress, 1.0),
                "eta_relative": elapsed / progress - elapsed,
                "state": state.dict(),
                "current_image": image,
                "textinfo": state.textinfo,
            }

    def interrupt(self) -> dict[str, Any]:
        with self._lock:
            self.state.interrupted = True
            self.interrupts.append(
                Interrupt(time.monotonic(), self.current_task, self.state.sampling_step)
            )
        return {}

    def skip(self) -> None:
        with self._lock:
            self.state.skipped = True

    def set_options(self, body: dict[str, Any]) -> None:
        wanted = body.get("sd_model_checkpoint")
        if wanted is not None and self.checkpoint(wanted) is None:
            raise ApiError(500, "RuntimeError", f"model {wanted!r} not found")
        with self._lock:
            self.opts.update(body)
            self.saved.update(body)

    # -- shared_state ------------------------------------------------------------------------

    def _begin(self, job: str) -> None:
        state = self.state
        state.sampling_step = 0
        state.time_start = time.time()
        state.job_count = -1
        state.job_no = 0
        state.job_timestamp = time.strftime("%Y%m%d%H%M%S")
        state.current_latent = None
        state.current_image = None
        state.current_image_sampling_step = 0
        state.id_live_preview = 0
        state.skipped = False
        state.interrupted = False
        state.textinfo = None
        state.job = job

    def _store_latent(self, latent: tuple) -> None:
        """``sd_samplers_common.store_latent``: with parallel processing off, the sampler
        decodes the preview itself when ``sampling_step % every == 0`` (and every > 0)."""
        state, every = self.state, self.opts["show_progress_every_n_steps"]
        state.current_latent = latent
        if (
            self.opts["live_previews_enable"]
            and every > 0
            and state.sampling_step % every == 0
            and not self.parallel_processing_allowed
        ):
            self._decode_current_image()

    def _set_current_image(self) -> None:
        if not self.parallel_processing_allowed:
            return
        state, every = self.state, self.opts["show_progress_every_n_steps"]
        if (
            self.opts["live_previews_enable"]
            and every != -1
            and state.sampling_step - state.current_image_sampling_step >= every
            and state.current_latent is not None
            and self._job_spec is not None
        ):
            self._decode_current_image()
            state.current_image_sampling_step = state.sampling_step

    def _decode_current_image(self) -> None:
        state = self.state
        if state.current_latent is not None and self._job_spec is not None:
            _, index = state.current_latent
            spec = self._job_spec
            fraction = (index + 1) / spec["steps"]
            if self.opts["show_progress_grid"] and len(spec["seeds"]) > 1:
                image = _grid([render(spec, n, fraction) for n in range(len(spec["seeds"]))])
            else:
                image = render(spec, 0, fraction)
            if self.preview_scale != 1.0:
                size = (
                    max(1, int(image.width * self.preview_scale)),
                    max(1, int(image.height * self.preview_scale)),
                )
                image = image.resize(size)
            state.current_image = image
            state.id_live_preview += 1

    def _take(self, name: str) -> Any:
        with self._lock:
            value = getattr(self.faults, name)
            if isinstance(value, bool):
                setattr(self.faults, name, False)
            elif isinstance(value, int) and name.startswith("progress_"):
                if value <= 0:
                    return 0
                setattr(self.faults, name, value - 1)
                return value
            else:
                setattr(self.faults, name, None)
            return value


# -- drawing ---------------------------------------------------------------------------------


def render(spec: dict[str, Any], index: int, fraction: float) -> PIL.Image.Image:
    """The "model": image ``index`` of a job ``fraction`` of the way from noise to the final
    picture. The prompt and checkpoint pick the colours, the seed the noise and the layout,
    so the same request gives the same image and each prompt is recognisable in a preview."""
    width, height, seed = spec["width"], spec["height"], spec["seeds"][index]
    digest = hashlib.sha256(f"{spec['prompt']}|{spec['checkpoint']}".encode()).digest()
    colour = np.array(list(digest[:3]), dtype=np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3)).astype(np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    wave = 0.5 + 0.5 * np.sin((x + y) / max(width, height) * 6.0 + phase)
    final = colour * (0.6 + 0.4 * wave[..., None])
    init = spec.get("init")
    if init is not None:  # img2img: from the input noised to the strength, towards the prompt
        strength = spec["strength"]
        noise = init * (1 - strength) + noise * strength
        final = init * (1 - strength) + final * strength
    mixed = noise * (1 - fraction) + final * fraction
    if init is not None and spec.get("mask") is not None:  # outside the mask: the input
        mixed = np.where(spec["mask"][..., None], mixed, init)
    return PIL.Image.fromarray(np.clip(mixed, 0, 255).astype(np.uint8))


def dominant_colour(spec_prompt: str, checkpoint: str = CHECKPOINTS[0]["model_name"]) -> tuple:
    """The colour a prompt's finished images lean to (for telling previews apart)."""
    digest = hashlib.sha256(f"{spec_prompt}|{checkpoint}".encode()).digest()
    return tuple(digest[:3])


def _grid(images: list[PIL.Image.Image]) -> PIL.Image.Image:
    grid = PIL.Image.new("RGB", (sum(i.width for i in images), images[0].height))
    x = 0
    for image in images:
        grid.paste(image, (x, 0))
        x += image.width
    return grid


def _encode(image: PIL.Image.Image, fmt: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if fmt in ("jpeg", "jpg") else fmt.upper())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_base64(encoded: Any) -> PIL.Image.Image:
    """``api.decode_base64_to_image``: a data URL or bare base64; else a 500."""
    if isinstance(encoded, str) and encoded.startswith("data:image/"):
        encoded = encoded.split(";")[1].split(",")[1]
    try:
        image = PIL.Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()
        return image
    except Exception as error:
        raise http_exception(500, "Invalid encoded image") from error


def _png_base64(image: PIL.Image.Image) -> str:
    return _encode(image, "png")


def _check_types(body: Any) -> None:
    """The pydantic model's checks, as FastAPI reports them (422, ``{"detail": [...]}``)."""
    kinds = {
        "prompt": str,
        "negative_prompt": str,
        "steps": int,
        "width": int,
        "height": int,
        "batch_size": int,
        "n_iter": int,
        "seed": int,
        "cfg_scale": (int, float),
        "override_settings": dict,
    }
    if not isinstance(body, dict):
        raise _Validation([{"loc": ["body"], "msg": "value is not a valid dict", "type": "dict"}])
    for name, kind in kinds.items():
        if name in body and body[name] is not None and not isinstance(body[name], kind):
            raise _Validation(
                [{"loc": ["body", name], "msg": f"value is not a valid {name}", "type": "type"}]
            )


class _Validation(Exception):
    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__("validation")
        self.detail = detail


class _NotFound(Exception):
    """A path the server has no route for (``--nowebui``: no ``/internal/*``)."""


class _Dropped(Exception):
    """The job's connection was dropped (the answer is never sent)."""


@dataclass
class _Raw:
    status: int
    body: bytes
    content_type: str


# -- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, method: str) -> None:
        fake: FakeA1111 = self.server.fake  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with fake._lock:
            fake.requests.append((method, path))
            fake.authorizations.add(self.headers.get("Authorization"))
        try:
            if path.startswith("/sdapi/"):
                if not fake.api:
                    return self._send(404, {"detail": "Not Found"})
                self._authorize(fake)
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise _Validation(
                    [{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}]
                ) from None
            result = self._route(fake, method, path, query, body)
        except _Dropped:
            return None
        except _NotFound:  # FastAPI's answer for a route that is not there
            return self._send(404, {"detail": "Not Found"})
        except _Validation as error:
            return self._send(422, {"detail": error.detail})
        except ApiError as error:
            return self._send(error.status, error.json())
        if isinstance(result, _Raw):
            return self._send_bytes(result.status, result.body, result.content_type)
        return self._send(200, result)

    def _route(self, fake: FakeA1111, method: str, path: str, query: str, body: Any) -> Any:
        if (method, path) == ("POST", "/sdapi/v1/txt2img"):
            return fake.txt2img(self, body)
        if (method, path) == ("POST", "/sdapi/v1/img2img"):
            return fake.img2img(self, body)
        if path.startswith("/internal/") and not fake.webui:
            raise _NotFound
        if (method, path) == ("POST", "/internal/progress"):
            return fake.internal_progress(body if isinstance(body, dict) else {})
        if (method, path) == ("GET", "/internal/ping"):
            return {}
        if (method, path) == ("GET", "/sdapi/v1/progress"):
            return fake.global_progress(query)
        if (method, path) == ("POST", "/sdapi/v1/interrupt"):
            return fake.interrupt()
        if (method, path) == ("POST", "/sdapi/v1/skip"):
            return fake.skip()
        if (method, path) == ("GET", "/sdapi/v1/sd-models"):
            return fake.checkpoints
        if (method, path) == ("GET", "/sdapi/v1/samplers"):
            return SAMPLERS
        if (method, path) == ("GET", "/sdapi/v1/schedulers"):
            return SCHEDULERS
        if (method, path) == ("GET", "/sdapi/v1/cmd-flags"):
            return dict(fake.cmd_flags)
        if (method, path) == ("GET", "/sdapi/v1/options"):
            with fake._lock:
                return {key: fake.opts[key] for key in fake.saved if key in fake.opts}
        if (method, path) == ("POST", "/sdapi/v1/options"):
            return fake.set_options(body)
        raise http_exception(404, "Not Found")

    def _authorize(self, fake: FakeA1111) -> None:
        if fake.auth is None:
            return
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            raise http_exception(401, "Not authenticated")
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise http_exception(401, "Invalid authentication credentials") from None
        if (user, password) != fake.auth:
            raise http_exception(401, "Incorrect username or password")

    def _send(self, status: int, data: Any) -> None:
        self._send_bytes(status, json.dumps(data).encode(), "application/json")

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away
            self.close_connection = True


def post_txt2img(url: str, payload: dict[str, Any], auth: tuple[str, str] | None = None) -> Any:
    """Another client's txt2img, as a script would send it (blocking)."""
    import httpx

    response = httpx.post(f"{url}/sdapi/v1/txt2img", json=payload, auth=auth, timeout=60)
    return response.json()


# -- helpers for the tests -------------------------------------------------------------------


@dataclass
class Recorded:
    """The events of one run of a backend, with the seconds since the call at which each came."""

    events: list[Any] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def last(self) -> Any:
        return self.events[-1] if self.events else None


def record(backend: Any, request: Any, control: Any = None, on_event: Any = None) -> Recorded:
    """Run ``backend.generate`` to its end on this thread; ``on_event(event, control)`` is called
    after each event (to cancel or finish early part-way)."""
    from gradio_diffusion_preview import RunControl

    control = control or RunControl()
    recorded, start = Recorded(), time.monotonic()
    for event in backend.generate(request, control):
        recorded.events.append(event)
        recorded.times.append(time.monotonic() - start)
        if on_event is not None:
            on_event(event, control)
    return recorded


def make_backend(url: str, **fields: Any) -> Any:
    """An ``A1111Backend`` for ``url``, polling fast (``options`` merge over that)."""
    from gradio_diffusion_preview.backends.a1111.backend import A1111Backend
    from gradio_diffusion_preview.endpoints import Endpoint

    options = {"poll_interval": 0.03, **fields.pop("options", {})}
    return A1111Backend(
        Endpoint(**{"id": "studio", "kind": "a1111", "url": url, "options": options, **fields})
    )


def make_request(backend: Any, **fields: Any) -> Any:
    """A validated request for ``backend``: small, seeded, over ``fields``."""
    from gradio_diffusion_preview import GenerationRequest, validate_request

    defaults = {"prompt": "a red fox in the snow", "steps": 8, "width": 64, "height": 64}
    return validate_request(GenerationRequest(**{**defaults, "seed": 7, **fields}), backend)
