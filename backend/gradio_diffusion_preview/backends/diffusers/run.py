"""One generation on a diffusers pipeline: the worker thread, the step callback, the hand-off.

Threads and hand-off::

    pipeline thread (PipelineRun._work)          consumer (PipelineRun.events, i.e. generate())
    load (cached) -> lock -> Started ---------->
    pipe(..., callback_on_step_end=_on_step)      EventChannel (latest step wins, never blocks)
      _on_step: x0 -> preview on device -------->  PendingPreview.result()  (device copy wait,
                 -> non-blocking copy, no wait        tiny decoder, if any, run here)
    Finished / Failed ------------------------->  yield ... ; finally: stop + join

The callback is the only code on the generation thread per step: it takes the x0 estimate kept
by ``X0Tracker``, projects it to a small RGB tile on the device and starts the copy off the
device. It checks the run's controls first: cancel (or the consumer going away) sets the
pipeline's ``_interrupt`` and leaves the pipeline at once, skipping the VAE decode; finish
early returns the x0 estimate as the latents and sets ``_interrupt``, so the pipeline's own
decode (with its upcasting, unpacking and post-processing) turns the estimate into the final
images. A pipeline with only the older ``callback(step, timestep, latents)`` (PixArt) gets it
with ``callback_steps=1``, calling the same code; its loop ignores what the callback returns, so
there cancel and finish early always leave by raising.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ...channel import EventChannel
from ...events import Failed, Finished, GenerationEvent, Started, Step
from .cpu_threads import apply_for
from .edit_capabilities import edits_by_instruction
from .finishing import decode_latents, honours_interrupt
from .img2img import denoising_steps, edit_arguments, edit_entry, edit_metadata, is_edit
from .latent_preview import (
    TAESD_REPOS,
    LatentRGBPreviewer,
    PendingPreview,
    PreviewPlan,
    TinyDecoderPreviewer,
)
from .loading import (
    LoadedPipeline,
    ModelNotFoundError,
    OptionValueError,
    UnsupportedModelError,
    is_out_of_memory,
    load_pipeline,
    locate_model,
    model_class_name,
    release_memory,
    resolve_device,
    resolve_dtype,
)
from .schedulers import SchedulerChoiceError, count_steps, make_scheduler, sampler_name
from .x0 import X0Tracker

if TYPE_CHECKING:
    from ...control import RunControl
    from ...request import GenerationRequest
    from .backend import DiffusersBackend, RunOptions

log = logging.getLogger(__name__)

SEED_MODULUS = 2**32
JOIN_SECONDS = 30.0


GPU_DEVICE_TYPES = ("cuda", "mps")


def default_previewer(device: torch.device) -> str:
    """The previewer when neither the request nor the backend names one: on a GPU the family's
    tiny decoder when it can be had ("auto": sharp previews at display resolution for a few
    milliseconds a frame), on the CPU the latent-to-RGB projection (a tiny decoder costs about
    1.9 s a frame there)."""
    return "auto" if torch.device(device).type in GPU_DEVICE_TYPES else "latent_rgb"


class _Stop(Exception):
    """Raised from the step callback to leave the pipeline at once (cancel, consumer gone)."""


class _FinishNow(Exception):
    """Raised from the step callback to finish early on a pipeline whose loop ignores
    ``_interrupt``: the run decodes ``latents`` itself (``decode_latents``)."""

    def __init__(self, latents: torch.Tensor) -> None:
        super().__init__("finish early")
        self.latents = latents


@dataclass(frozen=True)
class _PendingStep(Step):
    """A step whose preview is still being made; ``events`` turns it into a plain ``Step``."""

    pending: PendingPreview | None = None


class PipelineRun:
    """Runs one request. Iterate ``events()`` exactly once."""

    def __init__(
        self,
        backend: DiffusersBackend,
        request: GenerationRequest,
        control: RunControl,
        options: RunOptions,
    ) -> None:
        self.backend = backend
        self.request = request
        self.control = control
        self.options = options
        self.channel = EventChannel(0.0)
        self.stop = threading.Event()
        self.total_steps = request.steps or 1
        self.iterations = self.total_steps  # denoising iterations (step callbacks) expected
        self.early = False
        self.steps_done = 0
        self._plan: PreviewPlan | None = None
        self._tracker: X0Tracker | None = None
        self._preview_failed = False
        self._honours_interrupt = True
        self._thread = threading.Thread(target=self._work, name="gdp-diffusers", daemon=True)

    # -- consumer side -------------------------------------------------------------------------

    def events(self) -> Iterator[GenerationEvent]:
        self._thread.start()
        try:
            while True:
                if self.control.cancelled:
                    return
                event = self.channel.get(timeout=0.25)
                if event is None:
                    if self.channel.closed:
                        return
                    continue
                if isinstance(event, _PendingStep):
                    event = self._materialise(event)
                yield event
                if isinstance(event, Finished | Failed):
                    return
        finally:
            self.stop.set()  # the consumer left (done, cancelled or disconnected)
            self._thread.join(JOIN_SECONDS)

    def _materialise(self, event: _PendingStep) -> Step:
        preview = None
        if event.pending is not None:
            try:
                preview = event.pending.result()
            except Exception:
                log.exception("making the preview for step %d failed", event.step)
        return Step(event.step, event.total_steps, preview)

    # -- generation thread ---------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.control.cancelled

    def _work(self) -> None:
        self.backend._run_began()
        try:
            self._work_inner()
        finally:
            self.backend._run_ended()

    def _work_inner(self) -> None:
        entry: LoadedPipeline | None = None
        failure: Failed | None = None
        oom = False
        try:
            entry = self._load()
            if self._stopping():
                return
            while not entry.lock.acquire(timeout=0.1):  # one run per pipeline at a time
                if self._stopping():
                    return
            try:
                self._generate(entry)
            finally:
                entry.lock.release()
        except _Stop:
            pass
        except ModelNotFoundError as error:
            failure = Failed(str(error), "model_not_found")
        except (OptionValueError, SchedulerChoiceError, UnsupportedModelError) as error:
            failure = Failed(
                f"Backend '{self.backend.id}' cannot run this request: {str(error).rstrip('.')}.",
                "invalid_request",
            )
        except Exception as error:
            if is_out_of_memory(error):
                oom = True
                failure = Failed(self._oom_message(entry, error), "out_of_memory")
            else:
                log.exception("diffusers run failed")
                failure = Failed(
                    f"The diffusers backend failed running '{self.request.model}': "
                    f"{type(error).__name__}: {error}",
                    "backend_error",
                )
        finally:
            if failure is not None:
                self.channel.put(failure)
            self._release(entry, failure is not None or self._stopping() or self.early, oom)
            self.channel.close()

    def _load(self) -> LoadedPipeline:
        options = self.options
        source = locate_model(self.request.model or "")
        device = resolve_device(options.device or self.backend.device)
        apply_for(device, self.backend.cpu_thread_choice())  # the CPU only; once per process
        dtype = resolve_dtype(options.dtype or self.backend.dtype, device, model_class_name(source))
        key = (source.location, str(device), str(dtype).removeprefix("torch."))
        return self.backend._cache.get(key, lambda: load_pipeline(source, device, dtype))

    def _generate(self, entry: LoadedPipeline) -> None:
        request = self.request
        if is_edit(request):  # the img2img or inpainting pipeline built from this one
            entry = edit_entry(entry, request)
        pipe = entry.pipe
        width, height, count = request.width or 512, request.height or 512, request.num_images
        if entry.family in ("sd3", "flux") and (width % 16 or height % 16):
            raise OptionValueError(
                f"{entry.family} models need a width and height that are multiples of 16, got "
                f"{width}x{height}; use {width - width % 16 or 16}x{height - height % 16 or 16}"
            )
        # An older callback's return is ignored: finishing early always leaves the loop there.
        legacy = "callback_on_step_end" not in entry.call_parameters
        self._honours_interrupt = honours_interrupt(pipe, legacy)
        scheduler = make_scheduler(entry.base_scheduler, self.options.scheduler)
        self.iterations = count_steps(scheduler, self.total_steps)
        if is_edit(request) and not edits_by_instruction(pipe):
            # the last int(steps * strength) steps of the schedule
            self.total_steps, self.iterations = denoising_steps(
                entry, scheduler, request.steps or 1, request.strength or 0.0
            )
        self._tracker = X0Tracker(scheduler)
        previewer, previewer_name = self._previewer(entry)
        if previewer is not None:
            self._plan = self._preview_plan(entry, previewer, width, height, count)
        seeds = [(int(request.seed or 0) + index) % SEED_MODULUS for index in range(count)]
        kwargs = self._call_arguments(entry, seeds, width, height)
        pipe.scheduler = scheduler
        try:
            self.channel.put(
                Started(
                    total_steps=self.total_steps,
                    model=request.model or "",
                    seeds=seeds,
                    width=width,
                    height=height,
                    num_images=count,
                    preview_size=self._plan.size if self._plan else None,
                )
            )
            try:
                images = pipe(**kwargs).images
            except _FinishNow as finish:
                images = decode_latents(pipe, finish.latents)
        finally:
            pipe.scheduler = entry.base_scheduler
            self._tracker.release()
        self.channel.put(
            Finished(
                images=list(images),
                seeds=seeds,
                early=self.early,
                metadata={
                    "backend": "diffusers",
                    "model": request.model,
                    "pipeline": type(pipe).__name__,
                    "family": entry.family,
                    "sampler": sampler_name(scheduler),  # A1111's name, for PNG info
                    "scheduler": type(scheduler).__name__,
                    "steps": request.steps,
                    "steps_done": self.steps_done,
                    "guidance": request.guidance,
                    "prompt": request.prompt,
                    "negative_prompt": request.negative_prompt,
                    # the size made: a pipeline may round the size asked for (Lumina2)
                    "width": images[0].size[0] if images else width,
                    "height": images[0].size[1] if images else height,
                    "device": str(entry.device),
                    "dtype": str(entry.dtype).removeprefix("torch."),
                    "previewer": previewer_name,
                    **(edit_metadata(request) if is_edit(request) else {}),
                },
            )
        )

    def _call_arguments(
        self, entry: LoadedPipeline, seeds: list[int], width: int, height: int
    ) -> dict[str, Any]:
        request, accepts = self.request, entry.call_parameters
        if request.negative_prompt and "negative_prompt" not in accepts:
            raise OptionValueError(
                f"{type(entry.pipe).__name__} takes no negative prompt; leave negative_prompt empty"
            )
        wanted: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
            "width": width,
            "height": height,
            "num_images_per_prompt": request.num_images,
            # one CPU generator per image: the same seed gives the same image on any device
            "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
            "output_type": "pil",
            "callback_on_step_end": self._on_step,
            "callback_on_step_end_tensor_inputs": ["latents"],
            # the older callback, where there is no callback_on_step_end (PixArt)
            **(
                {}
                if "callback_on_step_end" in accepts
                else {"callback": self._legacy_callback(entry.pipe), "callback_steps": 1}
            ),
            # Sana, PixArt, HunyuanDiT: make the size asked for, not the nearest trained one
            "use_resolution_binning": False,
            # FLUX.1 Kontext: make the size asked for (not one of a million pixels) from the
            # input as given (already resized to it), not one of its preferred sizes
            "max_area": width * height,
            "_auto_resize": False,
            **(edit_arguments(request, width, height) if is_edit(request) else {}),
        }
        arguments = {
            name: value for name, value in wanted.items() if name in accepts and value is not None
        }
        if "guidance_schedule" in accepts and "guidance_scale" in arguments:
            # Ideogram 4: its default per-step schedule (as long as its default steps) excludes a
            # constant guidance_scale; the run's guidance is that constant
            arguments["guidance_schedule"] = None
        return arguments

    def _preview_plan(
        self, entry: LoadedPipeline, previewer: Any, width: int, height: int, count: int
    ) -> PreviewPlan | None:
        """The run's preview plan; one that cannot be made falls back to the projection of
        the latent's own channels, and failing that to no previews: never a failed run."""
        for candidate in (previewer, LatentRGBPreviewer("unknown", entry.latent_channels)):
            try:
                return PreviewPlan.create(
                    candidate,
                    width,
                    height,
                    count,
                    entry.vae_scale_factor,
                    packed=entry.family == "flux",
                    max_side=self.backend.preview_max_side,
                )
            except Exception:
                log.exception("preview plan with %s failed", type(candidate).__name__)
        return None

    def _previewer(self, entry: LoadedPipeline):
        choice = self.options.previewer or self.backend.previewer or default_previewer(entry.device)
        if choice == "none":
            return None, "none"
        if choice in ("taesd", "auto") or choice.startswith("taesd:"):
            source = choice.partition(":")[2] or TAESD_REPOS.get(entry.family)
            why = f"no tiny decoder is known for the {entry.family} latent family"
            if source:
                decoder, why = self.backend._tiny.get(source, entry.device, entry.dtype)
                channels = getattr(getattr(decoder, "config", None), "latent_channels", None)
                if decoder is not None and channels == entry.latent_channels:
                    return TinyDecoderPreviewer(decoder, source), f"taesd ({source})"
                if decoder is not None:
                    why = (
                        f"tiny decoder '{source}' is for {channels}-channel latents, the "
                        f"model has {entry.latent_channels}"
                    )
            if choice != "auto":
                log.warning("previewer %r unavailable, using latent_rgb: %s", choice, why)
            return _projection(entry), f"latent_rgb ({why})"
        return _projection(entry), "latent_rgb"

    def _on_step(self, pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict:
        """The step callback: runs on the generation thread after every denoising iteration.

        Some samplers take more iterations than steps (PNDM repeats its first timestep,
        second-order samplers evaluate twice); iterations are mapped onto the requested steps,
        so Step events always count 1..steps, and an iteration that completes no new step sends
        none.
        """
        iteration = index + 1
        self.iterations = max(self.iterations, iteration)
        for listener in list(self.backend.step_listeners):
            listener(iteration, self.iterations)
        if self._stopping():
            pipe._interrupt = True
            raise _Stop
        x0 = self._tracker.take() if self._tracker else None
        step = min(self.total_steps, math.ceil(iteration * self.total_steps / self.iterations))
        if step > self.steps_done:
            self.steps_done = step
            pending = None
            if self._plan is not None and not self._preview_failed:
                try:
                    pending = self._plan.preview(x0 if x0 is not None else tensors["latents"])
                except Exception:  # previews are a convenience: the run goes on without them
                    log.exception("previews disabled for this run")
                    self._preview_failed = True
            self.channel.put(_PendingStep(step, self.total_steps, None, pending))
        if self.control.finish_requested and iteration < self.iterations:
            self.early = True
            pipe._interrupt = True
            latents = x0 if x0 is not None else tensors["latents"]
            if not self._honours_interrupt:  # Lumina, Lumina2, AuraFlow, LCM...: leave now
                raise _FinishNow(latents)
            if x0 is not None:
                return {"latents": x0}
        return {}

    def _legacy_callback(self, pipe: Any):
        """The older ``callback(step, timestep, latents)``, called every ``callback_steps``
        scheduler steps (``i // scheduler.order``, after the step's last iteration): runs
        ``_on_step`` for that step's last iteration. Its return is ignored by the pipeline, so
        cancel and finish early leave the loop by raising (``_Stop``, ``_FinishNow``)."""

        def callback(step: int, timestep: Any, latents: torch.Tensor) -> None:
            order = max(1, int(getattr(pipe.scheduler, "order", 1) or 1))  # the run's scheduler
            self._on_step(pipe, (step + 1) * order - 1, timestep, {"latents": latents})

        return callback

    def _oom_message(self, entry: LoadedPipeline | None, error: BaseException) -> str:
        request = self.request
        where = (
            f"on {entry.device} ({str(entry.dtype).removeprefix('torch.')})"
            if entry
            else f"while loading '{request.model}'"
        )
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return (
            f"Out of memory generating {request.width}x{request.height} x {request.num_images} "
            f"image(s), {request.steps} steps, {where}, with '{request.model}'. Try a smaller "
            "size, fewer images or fewer loaded models; on a GPU, float16 uses half the memory "
            f"of float32. ({type(error).__name__}: {first_line})"
        )

    def _release(self, entry: LoadedPipeline | None, thoroughly: bool, oom: bool) -> None:
        """Drop this run's tensors; after a cancel, failure or early finish on a GPU also collect
        garbage and return cached device memory; after running out of memory also unload the
        other cached pipelines, so the next request has room. On the CPU a run leaves no
        reference cycle to collect, and a full collection holds the GIL (about 0.3 s with
        torch, diffusers and Gradio loaded) while the app's other requests wait."""
        if self._tracker is not None:
            self._tracker.release()
        self._plan = self._tracker = None
        if oom:
            self.backend._cache.evict(keep=entry.key if entry is not None else None)
        elif thoroughly and (entry is None or entry.device.type != "cpu"):
            release_memory(entry.device if entry is not None else None)


def _projection(entry: LoadedPipeline) -> LatentRGBPreviewer:
    """The latent-to-RGB previewer: the model's own factors if it ships them, else its family's."""
    return LatentRGBPreviewer(entry.family, entry.latent_channels, entry.rgb_factors)
