"""Generation info: what a run was asked to make, said where people and tools look for it.

``params_for_request`` turns a validated request into the run's ``GenerationParams`` (shown
under the final images, in the full-size view's caption, and sent back by the "reuse" event);
``infotext`` writes them in AUTOMATIC1111's infotext format, which PNG-info readers (A1111's
"PNG Info" tab, civitai, image browsers) parse; ``image_metadata`` is what goes into each final
PNG: that infotext as the ``parameters`` text chunk plus the same settings as JSON; and
``file_stem`` names the download after the prompt and seed.

The infotext format follows AUTOMATIC1111/stable-diffusion-webui at commit 036500223de0 —
``modules/processing.py`` ``create_infotext`` and ``modules/infotext_utils.py`` ``quote`` /
``parse_generation_parameters``: the prompt, then ``Negative prompt: ...`` when there is one,
then one line of ``Key: value`` pairs joined by ``", "``, a value that holds a comma, colon or
newline written as a JSON string.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

from .run_state import GenerationParams

if TYPE_CHECKING:
    from .events import Finished, Started
    from .request import GenerationRequest

JSON_CHUNK = "gradio_diffusion_preview"
"""The PNG text chunk holding the settings as JSON (``parameters`` holds the infotext)."""

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_NOT_IN_NAMES = re.compile(r"[^a-z0-9]+")
STEM_WORDS = 8
STEM_CHARS = 60


def display_model_name(model: str | None) -> str | None:
    """The model as people may see it: a repo id or a service's model name as given; a local
    path (absolute, relative, ``~``, Windows, or an existing folder) only by its last part, so
    no server path reaches a page, a file or an API client."""
    if not model:
        return model
    text = model.strip()
    looks_like_path = (
        text.startswith(("/", "~", ".", "\\"))
        or "\\" in text
        or bool(_WINDOWS_DRIVE.match(text))
        or text.count("/") > 1
        or os.path.isdir(text)
    )
    if not looks_like_path:
        return text
    parts = [part for part in re.split(r"[\\/]+", text) if part not in ("", ".", "..", "~")]
    return parts[-1] if parts else None


def _is_default(sampler: str | None) -> bool:
    """True for no sampler named, or the backend's own ("Default", "default", "Automatic"):
    the sampler the backend reports using is named instead."""
    return not sampler or sampler.strip().casefold() in ("default", "automatic")


def params_for_request(request: GenerationRequest, backend_id: str) -> GenerationParams:
    """The settings of a validated (resolved) request."""
    scheduler = request.options.get("scheduler")
    return GenerationParams(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        steps=request.steps,
        guidance=request.guidance,
        width=request.width,
        height=request.height,
        num_images=request.num_images,
        seed=request.seed,
        model=display_model_name(request.model),
        backend=backend_id,
        sampler=scheduler if isinstance(scheduler, str) and not _is_default(scheduler) else None,
        strength=request.strength if request.init_image is not None else None,
    )


def params_started(params: GenerationParams | None, event: Started) -> GenerationParams | None:
    """The settings once the backend said what it makes (its model, seeds and size)."""
    if params is None:
        return None
    return params.model_copy(
        update={
            "model": display_model_name(event.model) or params.model,
            "seed": event.seeds[0] if event.seeds else params.seed,
            "width": event.width,
            "height": event.height,
            "num_images": event.num_images,
        }
    )


def params_finished(
    params: GenerationParams | None, event: Finished, steps_done: int
) -> GenerationParams | None:
    """The settings once the images are made: the sampler a backend reports in its metadata
    (``sampler`` or ``scheduler``, when the request named none or asked for the backend's
    ``default``, so the images name the sampler that made them), the size made when the
    backend reports one (a pipeline may round the size asked for) and, after an early finish,
    the steps actually run. Nothing else from the metadata is copied: it may hold server
    details (paths, devices) that must not reach a page or a file."""
    if params is None:
        return None
    update: dict[str, Any] = {}
    reported = event.metadata.get("sampler") or event.metadata.get("scheduler")
    if _is_default(params.sampler) and isinstance(reported, str) and reported:
        update["sampler"] = reported
    if event.seeds:
        update["seed"] = event.seeds[0]
    for side in ("width", "height"):  # the size made, when the backend made another one
        made = event.metadata.get(side)
        if isinstance(made, int) and not isinstance(made, bool) and made > 0:
            update[side] = made
    if event.early:
        update["steps_done"] = steps_done
    return params.model_copy(update=update)


def _quote(value: Any) -> str:
    text = str(value)
    if "," in text or ":" in text or "\n" in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def _number(value: float) -> str:
    return f"{value:g}"


def infotext(params: GenerationParams, seed: int | None = None) -> str:
    """``params`` (with image seed ``seed``, default the first) in AUTOMATIC1111's infotext
    format: prompt line(s), ``Negative prompt: ...``, then ``Steps: N, Sampler: ..., CFG scale:
    G, Seed: S, Size: WxH, Model: ...`` and this project's extra keys."""
    seed = params.seed if seed is None else seed
    pairs: dict[str, Any] = {
        "Steps": params.steps,
        "Sampler": params.sampler,
        "CFG scale": None if params.guidance is None else _number(params.guidance),
        "Seed": seed,
        "Size": f"{params.width}x{params.height}" if params.width and params.height else None,
        "Model": params.model,
        # AUTOMATIC1111 writes an img2img run's strength so, after the model
        "Denoising strength": None if params.strength is None else _number(params.strength),
        "Backend": params.backend,
        "Finished early at step": params.steps_done,
    }
    settings = ", ".join(
        f"{key}: {_quote(value)}" for key, value in pairs.items() if value not in (None, "")
    )
    negative = f"\nNegative prompt: {params.negative_prompt}" if params.negative_prompt else ""
    return f"{params.prompt}{negative}\n{settings}".strip()


def image_metadata(
    params: GenerationParams, seed: int | None, index: int, elapsed: float | None = None
) -> dict[str, str]:
    """The text chunks of final image ``index``: ``parameters`` (the infotext) and
    ``gradio_diffusion_preview`` (the same settings as JSON, with this image's seed)."""
    settings = params.model_dump(exclude_none=True)
    settings["image_index"] = index
    if (seed if seed is not None else params.seed) is not None:  # a seedless run claims none
        settings["seed"] = seed if seed is not None else params.seed
    if elapsed is not None:
        settings["seconds"] = round(elapsed, 2)
    return {
        "parameters": infotext(params, seed),
        JSON_CHUNK: json.dumps(settings, ensure_ascii=False, sort_keys=True),
    }


def file_stem(prompt: str | None, seed: int | None, index: int = 0) -> str:
    """A download name without extension: the prompt's first words and the seed, e.g.
    ``a-red-lighthouse-on-a-cliff-1234``; ``image-<n>`` without a prompt."""
    words = _NOT_IN_NAMES.sub(" ", (prompt or "").lower()).split()[:STEM_WORDS]
    stem = "-".join(words)[:STEM_CHARS].strip("-")
    parts = [part for part in (stem, None if seed is None else str(seed)) if part]
    return "-".join(parts) if parts else f"image-{index + 1}"
