"""Image-to-image and inpainting runs on a loaded text-to-image pipeline.

A request with an ``init_image`` runs the model's img2img pipeline (with a ``mask_image``, its
inpainting pipeline), built from the loaded text-to-image pipeline's own components with
``AutoPipelineForImage2Image.from_pipe`` / ``AutoPipelineForInpainting.from_pipe`` on the first
such request and kept beside it: no weights are loaded or copied twice. The built pipeline
shares the text-to-image pipeline's modules, so the same lock serves both.

Everything else is the text-to-image run (``run.PipelineRun``): the step callback, x0 previews,
cancel and finish early. The pipeline starts from the input image noised to the level
``strength`` calls for and runs the last ``int(steps * strength)`` steps of the schedule (the
exact count is the pipeline's own ``get_timesteps``, asked here before the run so ``Started``
says it); the x0 estimate at the first of them is the input, barely changed at a low strength,
so the first preview shows the input rather than noise. The input (and the mask) are resized to
the request's size first, so the result has that size (by default the input's own).

An instruction-editing pipeline (FLUX.1 Kontext, ``edit_capabilities.INSTRUCTION_EDITING``) is
run as loaded: the input image (resized to the request's size) is its ``image``, the prompt the
instruction, and every step of the schedule runs (no strength). Its step callback sees only the
latents being made (the input's latents are a separate, fixed context), so previews, cancel and
finish early are those of text-to-image.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import weakref
from typing import TYPE_CHECKING, Any

from .edit_capabilities import IMAGE_TO_IMAGE, INPAINTING, edits_by_instruction
from .loading import LoadedPipeline, OptionValueError
from .schedulers import count_steps

if TYPE_CHECKING:
    from ...request import GenerationRequest

log = logging.getLogger(__name__)

_BUILT: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Text-to-image pipeline -> its img2img / inpainting pipelines, built once."""


def is_edit(request: GenerationRequest) -> bool:
    """Whether ``request`` runs from an input image."""
    return request.init_image is not None


def edit_entry(entry: LoadedPipeline, request: GenerationRequest) -> LoadedPipeline:
    """``entry`` with the img2img (or, with a mask, inpainting) pipeline built from its
    components in place of its text-to-image one: same key, lock, device and previews. An
    instruction-editing pipeline is its own: ``entry`` as it is."""
    if edits_by_instruction(entry.pipe):
        if request.mask_image is not None:
            raise OptionValueError(
                f"{type(entry.pipe).__name__} edits by instruction and takes no mask; "
                "leave mask_image unset"
            )
        return entry
    kind = "inpaint" if request.mask_image is not None else "img2img"
    pipe = _built(entry.pipe, kind)
    import inspect

    return dataclasses.replace(
        entry,
        pipe=pipe,
        call_parameters=frozenset(inspect.signature(pipe.__call__).parameters),
    )


def _built(base: Any, kind: str) -> Any:
    """The ``kind`` pipeline of ``base``, built on first use (the caller holds the lock)."""
    built = _BUILT.setdefault(base, {})
    if kind not in built:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        name = type(base).__name__
        table, auto = (
            (IMAGE_TO_IMAGE, AutoPipelineForImage2Image)
            if kind == "img2img"
            else (INPAINTING, AutoPipelineForInpainting)
        )
        task = "image-to-image" if kind == "img2img" else "inpainting"
        if name not in table:
            takes = ", ".join(sorted(table))
            raise OptionValueError(
                f"{name} models do not take an input image for {task} here; leave "
                f"{'init_image' if kind == 'img2img' else 'mask_image'} unset, or use a model "
                f"of one of these classes: {takes}"
            )
        built[kind] = auto.from_pipe(base)
        built[kind].set_progress_bar_config(disable=True)  # as the loaded pipeline's
        log.info("built %s from %s", type(built[kind]).__name__, name)
    return built[kind]


def denoising_steps(entry: LoadedPipeline, scheduler: Any, steps: int, strength: float):
    """(steps, iterations) an edit runs: the steps reported (``int(steps * strength)`` for most
    pipelines) and the denoising iterations (step callbacks) they take with ``scheduler``, both
    from the pipeline's own ``get_timesteps`` asked on a copy of the scheduler. Raises
    ``OptionValueError`` when no step would run."""
    probe = type(scheduler).from_config(scheduler.config)
    full = count_steps(scheduler, steps)  # the full schedule's iterations
    try:
        try:
            probe.set_timesteps(steps)
        except Exception:
            probe.set_timesteps(steps, mu=1.0)
        owner = types.SimpleNamespace(scheduler=probe)
        timesteps, done = type(entry.pipe).get_timesteps(owner, steps, strength, "cpu")
        iterations, done = len(timesteps), int(done)
    except Exception:  # a pipeline without get_timesteps, or another signature
        done = min(int(steps * strength), steps)
        order = max(1, int(getattr(scheduler, "order", 1) or 1))
        iterations = max(0, full - (steps - done) * order)
    if done < 1 or iterations < 1:
        raise OptionValueError(
            f"with strength {strength:g} and {steps} steps no denoising step runs "
            f"(steps x strength = {steps * strength:g}); raise the strength or the steps so "
            "that their product is at least 1"
        )
    return done, iterations


def edit_arguments(request: GenerationRequest, width: int, height: int) -> dict[str, Any]:
    """The pipeline call's input image (RGB), mask (L, white = remade) and strength, resized
    to the size asked for (an instruction edit's strength is None, and is left out)."""
    from PIL import Image

    image = request.init_image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    arguments: dict[str, Any] = {"image": image}
    if request.strength is not None:
        arguments["strength"] = request.strength
    if request.mask_image is not None:
        mask = request.mask_image.convert("L")
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.Resampling.NEAREST)
        arguments["mask_image"] = mask
    return arguments


def edit_metadata(request: GenerationRequest) -> dict[str, Any]:
    """What a finished edit records beside the text-to-image fields (for PNG info)."""
    return {
        "strength": request.strength,
        "init_size": list(request.init_image.size),
        "inpainting": request.mask_image is not None,
        "instruction_editing": request.strength is None,
    }
