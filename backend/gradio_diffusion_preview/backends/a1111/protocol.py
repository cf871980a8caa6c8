"""The AUTOMATIC1111 / Forge / SD.Next HTTP API as this backend uses it: pure functions from our
request to the server's JSON and from its JSON back to our values, with no I/O.

Shapes, as the servers' sources define them (``modules/api/api.py``, ``modules/api/models.py``,
``modules/progress.py``, ``modules/shared_state.py``):

- ``POST /sdapi/v1/txt2img`` takes the fields of ``StableDiffusionProcessingTxt2Img`` plus
  ``force_task_id`` and ``override_settings``; it answers ``{images: [bare base64], parameters,
  info: <a JSON *string*>}``. With ``opts.return_grid`` a batch comes back with a grid first;
  ``info.index_of_first_image`` says where the batch's own images start.
- ``POST /internal/progress {id_task, id_live_preview, live_preview}`` answers ``{active, queued,
  completed, progress, eta, live_preview: data URL, id_live_preview, textinfo}`` for that task;
  while queued ``textinfo`` is ``"In queue: i/n"``.
- ``progress`` is ``job_no / job_count + sampling_step / sampling_steps / job_count``, and the
  samplers' callback sets ``sampling_step`` to the 0-based index of the step just finished.
- ``POST /sdapi/v1/img2img`` takes the same fields plus ``init_images`` (bare base64),
  ``denoising_strength``, ``resize_mode`` and, for inpainting, ``mask`` with ``mask_blur``,
  ``inpainting_fill``, ``inpaint_full_res`` and ``inpainting_mask_invert``; it answers as
  txt2img does. Its sampler runs ``t_enc + 1`` steps, ``t_enc = int(min(strength, 0.999) *
  steps)`` (``sd_samplers_common.setup_img2img_steps`` without ``img2img_fix_steps``), and
  ``sampling_steps`` is that count, so the progress fraction is over those steps.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import PIL.Image

from ...request import GenerationRequest

QUEUE_TEXT = re.compile(r"In queue:\s*(\d+)\s*/\s*(\d+)")
DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.ASCII)


class ProtocolError(ValueError):
    """The server answered with something that is not what its API defines; ``str()`` says
    what was wrong, for a person."""


@dataclass(frozen=True)
class RunSettings:
    """What one txt2img call sends beyond the request: resolved names and preview settings."""

    task_id: str
    checkpoint: str | None = None
    sampler: str | None = None
    scheduler: str | None = None
    previews: bool = True
    preview_every_n_steps: int = 1
    decodes_at_polls: bool = True
    """False for a server that decodes previews in its sampler instead of at a poll
    (AUTOMATIC1111 with --lowvram / --medvram), where a preview period of 0 gives none."""
    saved_options: frozenset[str] = frozenset()
    """The settings the server has saved (``GET /sdapi/v1/options`` lists ``opts.data``): the
    only ones it restores after a run, so the only ones a run may override."""


PREVIEW_OVERRIDES = (
    "live_previews_enable",
    "show_progress_every_n_steps",
    "live_previews_image_format",
    "show_progress_grid",
)
"""The server settings a run with previews overrides, when the server will restore them."""


def txt2img_payload(request: GenerationRequest, settings: RunSettings) -> dict[str, Any]:
    """The JSON body of ``POST /sdapi/v1/txt2img`` for ``request`` (validated and resolved).

    The batch is one iteration of ``num_images`` images (``n_iter=1``), so the server's progress
    fraction is the sampler's alone. Settings this run needs (its checkpoint, a live preview at
    every step, JPEG previews of the first image only) go in ``override_settings``.

    The server restores afterwards only the overrides its ``opts.data`` already held
    (``process_images``' ``stored_opts``; a fresh server without ``config.json`` holds almost
    none), and an override it did not restore stays and is saved by the next options call. So a
    preview setting is overridden only when ``settings.saved_options`` has it; the others stay
    the server's own. A preview every step is ``show_progress_every_n_steps`` 0, not 1: the
    server decodes when ``sampling_step`` (the 0-based index of the step done) has moved on by
    that many, so 1 gives the first preview after step 2, and 0 one from step 1 on. A server that
    decodes in its sampler (``settings.decodes_at_polls`` False) does so on the steps where
    ``sampling_step % n == 0``, never for 0: there 1 is every step, step 1 included."""
    overrides: dict[str, Any] = {}
    if settings.checkpoint:
        overrides["sd_model_checkpoint"] = settings.checkpoint
    if settings.previews:
        every = settings.preview_every_n_steps
        wanted = {
            "live_previews_enable": True,
            "show_progress_every_n_steps": 0 if every == 1 and settings.decodes_at_polls else every,
            "live_previews_image_format": "jpeg",
            "show_progress_grid": False,
        }
        overrides.update({k: v for k, v in wanted.items() if k in settings.saved_options})
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed if request.seed is not None else -1,
        "subseed_strength": 0,
        "batch_size": request.num_images,
        "n_iter": 1,
        "steps": request.steps,
        "width": request.width,
        "height": request.height,
        "send_images": True,
        "save_images": False,
        "force_task_id": settings.task_id,
        "override_settings": overrides,
        "override_settings_restore_afterwards": True,
    }
    if request.guidance is not None:
        payload["cfg_scale"] = request.guidance
    if settings.sampler:
        payload["sampler_name"] = settings.sampler
    if settings.scheduler:
        payload["scheduler"] = settings.scheduler
    return payload


MASK_BLUR = 4
"""AUTOMATIC1111's default blur of a mask's edge, in pixels (its UI's and API's default)."""
INPAINT_FROM_ORIGINAL = 1
"""``inpainting_fill`` 1, "original": the masked area starts from the input picture, so the
strength means what it means without a mask (0 is "fill", which starts from a flat colour)."""


def is_edit(request: GenerationRequest) -> bool:
    """Whether ``request`` goes to ``/sdapi/v1/img2img`` (it has an input image)."""
    return request.init_image is not None


def edit_steps(steps: int, strength: float) -> int:
    """The denoising steps an img2img job runs: ``t_enc + 1`` with ``t_enc = int(min(strength,
    0.999) * steps)`` (``setup_img2img_steps``; the server's default ``img2img_fix_steps`` off)."""
    return int(min(strength, 0.999) * steps) + 1


def img2img_payload(request: GenerationRequest, settings: RunSettings) -> dict[str, Any]:
    """The JSON body of ``POST /sdapi/v1/img2img``: txt2img's fields (see ``txt2img_payload``)
    plus the input image as bare base64 PNG, the strength as ``denoising_strength``, and a
    mask (white: remade) with the inpainting fields when the request has one. ``resize_mode``
    0 ("Just resize") makes the input the request's size, which validation already set to
    the input's own when the request gave none."""
    payload = txt2img_payload(request, settings)
    payload["init_images"] = [png_base64(request.init_image, "RGB")]
    payload["denoising_strength"] = request.strength
    payload["resize_mode"] = 0
    payload["include_init_images"] = False
    if request.mask_image is not None:
        payload.update(
            mask=png_base64(request.mask_image, "L"),
            mask_blur=MASK_BLUR,
            inpainting_fill=INPAINT_FROM_ORIGINAL,
            inpaint_full_res=False,
            inpainting_mask_invert=0,
        )
    return payload


def png_base64(image: PIL.Image.Image, mode: str) -> str:
    """``image`` as bare base64 PNG in ``mode`` (what the server's ``decode_base64_to_image``
    reads; an alpha channel is dropped so that a transparent input is not read as black)."""
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ProgressReport:
    """One answer of ``/internal/progress`` for our task."""

    active: bool = False
    queued: bool = False
    completed: bool = False
    progress: float | None = None
    eta: float | None = None
    live_preview: str | None = None
    id_live_preview: int | None = None
    textinfo: str | None = None

    @property
    def queue_place(self) -> tuple[int | None, int | None]:
        """(position, queue size) from ``"In queue: i/n"``; Nones when the text says neither."""
        match = QUEUE_TEXT.search(self.textinfo or "")
        return (int(match[1]), int(match[2])) if match else (None, None)


def parse_progress(data: Any) -> ProgressReport:
    """A ``ProgressReport`` from the decoded JSON; ``ProtocolError`` when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("active"), bool):
        raise ProtocolError(f"a progress answer without 'active': {_clip(data)}")

    def number(name: str) -> float | None:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    preview_id = data.get("id_live_preview")
    preview = data.get("live_preview")
    return ProgressReport(
        active=data["active"],
        queued=data.get("queued") is True,
        completed=data.get("completed") is True,
        progress=number("progress"),
        eta=number("eta"),
        live_preview=preview if isinstance(preview, str) and preview else None,
        id_live_preview=preview_id if isinstance(preview_id, int) else None,
        textinfo=data.get("textinfo") if isinstance(data.get("textinfo"), str) else None,
    )


def steps_done(progress: float | None, total_steps: int, preview: bool = False) -> int:
    """Denoising steps finished, from the server's progress fraction mapped onto our steps.

    The fraction is ``sampling_step / sampling_steps``, where ``sampling_step`` is the 0-based
    index of the last step finished, so any fraction above zero means that index plus one
    steps are done. Zero alone says nothing (no step, or only the first); a live preview
    (``preview``: the server had a latent to decode, which a sampler stores from step 1 on)
    makes it step 1."""
    if total_steps <= 0:
        return 0
    if progress is None or progress <= 0:
        return 1 if preview else 0
    return min(total_steps, int(progress * total_steps + 0.5) + 1)


def decode_image(encoded: str, what: str) -> PIL.Image.Image:
    """A loaded RGB image from bare base64 or a ``data:image/...;base64,`` URL, in memory."""
    text = DATA_URL.sub("", encoded.strip(), count=1)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what} is not base64: {_clip(encoded)}") from None
    try:
        with PIL.Image.open(io.BytesIO(raw)) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise ProtocolError(f"{what} is not an image ({error})") from None


@dataclass(frozen=True)
class Txt2ImgResult:
    """What a txt2img answer holds for us: the batch's images, their seeds, the infotexts."""

    images: list[PIL.Image.Image]
    seeds: list[int] | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str | None:
        value = self.info.get("sd_model_name")
        return value if isinstance(value, str) and value else None

    @property
    def model_hash(self) -> str | None:
        value = self.info.get("sd_model_hash")
        return value if isinstance(value, str) and value else None


def parse_txt2img(data: Any, num_images: int) -> Txt2ImgResult:
    """The batch's images (the grid some servers put first left out) and seeds from a
    decoded txt2img answer; ``ProtocolError`` when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ProtocolError(f"a txt2img answer without 'images': {_clip(data)}")
    info = _info(data.get("info"))
    first = info.get("index_of_first_image")
    first = first if isinstance(first, int) and 0 <= first < len(data["images"]) else 0
    encoded = data["images"][first : first + num_images]
    if any(not isinstance(item, str) for item in encoded):
        raise ProtocolError("a txt2img answer whose images are not base64 strings")
    images = [decode_image(item, f"image {n + 1}") for n, item in enumerate(encoded)]
    seeds = info.get("all_seeds")
    if (
        isinstance(seeds, list)
        and len(seeds) >= len(images)
        and all(isinstance(s, int) for s in seeds)
    ):
        seeds = seeds[: len(images)]
    else:
        seeds = None
    return Txt2ImgResult(images, seeds, info)


def _info(value: Any) -> dict[str, Any]:
    """``info`` is a JSON string of ``Processed.js()``; a missing or broken one is empty
    (the images are still good)."""
    if isinstance(value, dict):
        return value
    try:
        decoded = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def error_text(data: Any) -> str | None:
    """The message in an error answer: ``{"error", "detail", "body", "errors"}`` (the API's
    exception handler) or FastAPI's ``{"detail": ...}``; None when there is none."""
    if not isinstance(data, dict):
        return None
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors: [{loc, msg, type}, ...]
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
        detail = "; ".join(parts)
    errors = data.get("errors")
    name = data.get("error")
    text = detail if isinstance(detail, str) and detail else None
    if text is None and isinstance(errors, str) and errors:
        text = errors
    if text is None:
        return name if isinstance(name, str) and name else None
    if isinstance(name, str) and name and name != "HTTPException":
        return f"{name}: {text}"
    return text


def checkpoint_stem(filename: str | None) -> str | None:
    """A checkpoint file's name without folders or extension (the servers' ``name_for_extra``,
    which txt2img reports as ``sd_model_name``), for Windows and POSIX paths alike."""
    if not filename:
        return None
    base = re.split(r"[\\/]", filename)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _clip(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
