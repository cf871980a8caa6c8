"""The image-to-image checks, for a backend whose capabilities (for the kit's model) say
``image_to_image``: ``check_image_to_image``, an input picture of a size other than the request's
gives final images of the input's size; ``check_image_to_image_preview``, at a low strength the
first preview shows the input rather than noise.

How "shows the input" is judged, for any previewer: the check runs twice at the same seed, with
two pictures that are each other's mirror image (red over blue, blue over red), and each run's
first preview must be nearer its own input than the other's. A preview of noise, or of the
prompt alone, is no nearer one than the other. A model with random weights (diffusers' tiny test
pipelines) cannot pass it: its VAE keeps nothing of the picture in the latent, so nothing of it
shows in any preview; skip the check by name for such models (``skip=("image_to_image_preview",)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image

from ..backend import Backend, Capabilities
from .checks_events import expect_event_order, expect_finished_run
from .defaults import DEFAULT_TIMEOUT, capabilities_for_run
from .recording import Recording, fail_check, run_backend

CHECK = "image_to_image"
PREVIEW_CHECK = "image_to_image_preview"
LOW_STRENGTH = 0.3
"""The strength of the check's runs: low enough that the input shows from the first step."""


def input_size(
    caps: Capabilities, width: int | None = None, height: int | None = None
) -> tuple[int, int]:
    """A size other than the request's (by default the model's) and not square, so width and
    height cannot be swapped unseen, within the limits: its width, and a height one size
    step or two off."""
    width = width or caps.default_size[0]
    height = height or caps.default_size[1]
    step = caps.size_multiple
    taller = height + step * max(1, 16 // step)
    shorter = height - step * max(1, 16 // step)
    height = taller if taller <= caps.max_size else shorter
    if height == width:
        height = height - step if height - step >= caps.min_size else height + step
    return width, max(caps.min_size, height)


def split_picture(size: tuple[int, int], flipped: bool) -> PIL.Image.Image:
    """Red over blue (``flipped``: blue over red), each half one flat colour."""
    top, bottom = ((210, 40, 40), (40, 60, 210))[:: -1 if flipped else 1]
    image = PIL.Image.new("RGB", size, bottom)
    image.paste(top, (0, 0, size[0], size[1] // 2))
    return image


def edit_runs(
    backend: Backend, timeout: float, fields: dict[str, Any], check: str = CHECK
) -> list[Recording]:
    """The two finished runs of the checks (red over blue, then blue over red), at a low
    strength, with no width or height: the input's size is the size asked for."""
    caps = capabilities_for_run(backend, fields.get("model"))
    size = input_size(caps, fields.get("width"), fields.get("height"))
    steps = fields.get("steps") or caps.default_steps
    if caps.steps:  # enough steps that int(steps * strength) is at least one
        steps = min(max(steps, int(np.ceil(1 / LOW_STRENGTH)) + 1), caps.steps_range[1])
    else:
        steps = None
    skipped = ("width", "height", "num_images", "init_image", "mask_image")
    base = {
        **{name: value for name, value in fields.items() if name not in skipped},
        "steps": steps,
        "strength": LOW_STRENGTH,
        "num_images": 1,
        "width": None,  # over the kit's default size: the output takes the input's
        "height": None,
    }
    runs = []
    for flipped in (False, True):
        rec = run_backend(backend, timeout=timeout, **base, init_image=split_picture(size, flipped))
        expect_event_order(rec, check)
        expect_finished_run(rec, check)
        runs.append(rec)
    return runs


def _not_applicable(backend: Backend, fields: dict[str, Any]) -> str | None:
    caps = capabilities_for_run(backend, fields.get("model"))
    if not caps.image_to_image:
        return "capabilities.image_to_image is False"
    if caps.sizes:
        return "the backend makes only the sizes it lists"
    return None


def check_image_to_image(
    backend: Backend, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any
) -> str | None:
    """An input image of another size than the request's gives final images of its size."""
    reason = _not_applicable(backend, fields)
    if reason:
        return reason
    for index, rec in enumerate(edit_runs(backend, timeout, fields)):
        size = rec.request.init_image.size
        made = [image.size for image in rec.finished.images]
        if any(side != size for side in made):
            fail_check(
                rec,
                CHECK,
                f"final images of the input's size {size[0]}x{size[1]} (the request gave no "
                "width or height: validation sets them to the input's)",
                f"images of {', '.join(f'{w}x{h}' for w, h in made)} (run {index + 1})",
                fix="make the images at request.width x request.height, resizing the input "
                "image to that size before the run",
            )
    return None


def check_image_to_image_preview(
    backend: Backend, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any
) -> str | None:
    """At a low strength the first preview shows the input: nearer it than its mirror."""
    reason = _not_applicable(backend, fields)
    if reason:
        return reason
    if not capabilities_for_run(backend, fields.get("model")).step_previews:
        return "capabilities.step_previews is False"
    runs = edit_runs(backend, timeout, fields, PREVIEW_CHECK)
    previews = [_first_preview(rec) for rec in runs]
    for rec, preview in zip(runs, previews, strict=True):
        if preview is None:
            fail_check(
                rec,
                PREVIEW_CHECK,
                "a preview with the first Step of an image-to-image run",
                "no preview",
                fix="send a preview with every Step of an image-to-image run as with "
                "text-to-image (the x0 estimate: at a low strength it is the input, barely "
                "changed)",
            )
    for index, (rec, preview) in enumerate(zip(runs, previews, strict=True)):
        size = rec.request.init_image.size
        own = split_picture(size, flipped=bool(index))
        other = split_picture(size, flipped=not index)
        near, far = _distance(preview, own), _distance(preview, other)
        if not near < far:
            fail_check(
                rec,
                PREVIEW_CHECK,
                f"the first preview at strength {LOW_STRENGTH} to show the input (nearer it "
                "than its mirror image)",
                f"a preview {near:.0f} from the input and {far:.0f} from its mirror image "
                "(mean difference per channel, of 255)",
                fix="start the run from the input image noised to the strength's level, and "
                "preview the model's estimate of the final image (x0), not the noisy latent",
            )
    return None


def _first_preview(rec: Recording) -> PIL.Image.Image | None:
    for step in rec.steps:
        preview = step.preview
        if isinstance(preview, list):
            preview = preview[0] if preview else None
        if preview is None:
            continue
        if isinstance(preview, np.ndarray):
            return PIL.Image.fromarray(preview)
        return preview
    return None


def _distance(a: PIL.Image.Image, b: PIL.Image.Image) -> float:
    a = a.convert("RGB")
    b = b.convert("RGB").resize(a.size, PIL.Image.Resampling.BILINEAR)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())
