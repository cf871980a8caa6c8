"""The previews check: what a run's Steps show while it forms. A preview is one image, or a
list with one image per image of the batch; every image is in memory and of the size that
``Started.preview_size`` declared."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image

from ..backend import Backend
from ..events import Step
from .checks_events import expect_event_order
from .defaults import DEFAULT_TIMEOUT
from .recording import Recording, fail_check, run_backend

CHECK = "previews"


def check_previews(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Every preview is an in-memory PIL image or ``HxWx3`` ``uint8`` array of the size that
    Started.preview_size declared, or a list of exactly ``num_images`` of them (one per image of
    the batch); a run that declares previews sends some; one that declares none (or whose
    capabilities say step_previews=False) sends none."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_event_order(rec, CHECK)
    expect_previews(rec)


def expect_previews(rec: Recording) -> None:
    """The rules of ``check_previews``."""
    started = rec.started
    if started is None:
        return
    declared = started.preview_size
    sent = [s for s in rec.steps if s.preview is not None]
    if declared is None:
        if sent:
            fail_check(
                rec,
                CHECK,
                "no previews, as Started.preview_size is None",
                f"a preview on Step {sent[0].step}",
                fix="pass Started(preview_size=(width, height)) for a run that sends "
                "previews, or send Step(step, total_steps) without one",
            )
        return
    if not rec.capabilities.step_previews:
        fail_check(
            rec,
            CHECK,
            "Started.preview_size=None, as capabilities.step_previews is False",
            f"preview_size={declared}",
            fix="declare Capabilities(step_previews=True) for a backend that sends previews, "
            "or pass Started(preview_size=None) when it sends none",
        )
    if (
        not isinstance(declared, tuple | list)
        or len(declared) != 2
        or not all(isinstance(n, int) and n > 0 for n in declared)
    ):
        fail_check(
            rec,
            CHECK,
            "Started.preview_size to be (width, height) in pixels",
            repr(declared),
            fix="pass Started(preview_size=(width, height)) as two positive ints, the size of "
            "each preview image",
        )
    if rec.steps and not sent:
        fail_check(
            rec,
            CHECK,
            f"previews, as Started.preview_size is {tuple(declared)}",
            "no Step with a preview",
            fix="send a preview on the Steps (Step(step, total, preview=image)), or pass "
            "Started(preview_size=None) for a run that sends none",
        )
    for step in sent:
        if isinstance(step.preview, list | tuple):
            expect_batch_preview(rec, step, started.num_images, tuple(declared))
        else:
            expect_preview_image(rec, step, step.preview, tuple(declared), "")


def expect_batch_preview(
    rec: Recording, step: Step, num_images: int, declared: tuple[int, int]
) -> None:
    """A list preview holds one image per image of the batch, each of the declared size."""
    images = list(step.preview)
    if len(images) != num_images:
        sizes = ", ".join(size_text(image) for image in images) or "none"
        fail_check(
            rec,
            CHECK,
            f"a list preview to hold one image per image of the batch: {num_images} "
            f"(Started.num_images), each {declared[0]}x{declared[1]} (Started.preview_size)",
            f"Step {step.step}: a list of {len(images)} ({sizes})",
            fix="send one preview per image of the batch, in the batch's order, or one image "
            "for the whole run",
        )
    for index, image in enumerate(images):
        expect_preview_image(rec, step, image, declared, f"image {index}")


def expect_preview_image(
    rec: Recording, step: Step, preview: Any, declared: tuple[int, int], which: str
) -> None:
    """One preview image: in memory, a PIL image or ``HxWx3`` ``uint8`` array, of the
    declared size. ``which`` names the image of a list preview ("image 1")."""
    where = f"Step {step.step}" + (f", {which}" if which else "")
    if isinstance(preview, PIL.Image.Image):
        if getattr(preview, "filename", None):
            fail_check(
                rec,
                CHECK,
                "previews made in memory",
                f"{where}'s preview was read from {preview.filename}",
                fix="decode a service's preview from its bytes in memory "
                "(PIL.Image.open(io.BytesIO(data))), never from a file",
            )
        size = preview.size
    elif isinstance(preview, np.ndarray):
        if isinstance(preview, np.memmap) or isinstance(preview.base, np.memmap):
            fail_check(
                rec,
                CHECK,
                "previews made in memory",
                f"{where}'s preview is a memory-mapped file",
                fix="copy the array into memory (np.array(preview)) before sending it",
            )
        if preview.ndim != 3 or preview.shape[2] != 3 or preview.dtype != np.uint8:
            fail_check(
                rec,
                CHECK,
                "a preview array of shape (height, width, 3) and dtype uint8",
                f"{where}: shape {preview.shape}, dtype {preview.dtype}",
                fix="send previews as height x width x 3 uint8 arrays (e.g. "
                "(x.clip(0, 1) * 255).astype(np.uint8) for floats in 0..1), or as PIL images",
            )
        size = (preview.shape[1], preview.shape[0])
    else:
        fail_check(
            rec,
            CHECK,
            "previews that are PIL images or HxWx3 uint8 numpy arrays (or a list of them, "
            "one per image of the batch)",
            f"{where}: a {type(preview).__name__}",
            fix="convert previews to a PIL image or an HxWx3 uint8 numpy array (a torch "
            "tensor: .cpu().numpy(); a service's bytes: PIL.Image.open(io.BytesIO(data)))",
        )
    width, height = declared
    if tuple(size) != (width, height):
        fail_check(
            rec,
            CHECK,
            f"previews of {width}x{height} (Started.preview_size)",
            f"{where}: a {size[0]}x{size[1]} preview",
            fix="pass Started(preview_size=...) the size your previews really have, or resize "
            "each preview to it",
        )


def size_text(image: Any) -> str:
    """``WxH`` of a preview image (a PIL image or an ``HxWx...`` array), else its type."""
    if isinstance(image, PIL.Image.Image):
        return f"{image.width}x{image.height}"
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return f"{image.shape[1]}x{image.shape[0]}"
    return f"a {type(image).__name__}"
