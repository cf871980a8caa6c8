"""Your own generation loop in the widget: ``stream_loop`` runs it, ``LiveSteps`` reports its steps.

    def my_loop(live: LiveSteps):                     # any loop, yours
        for index in range(steps):
            latents = denoise(latents, index)
            live.step(index + 1, latents=latents)      # a preview, Stop and "Use this preview"
            if live.finish_requested:                  # "Use this preview": decode what you have
                break
        return decode(latents)                         # a PIL image (or a list of them)

    def generate(prompt):
        yield from stream_loop(my_loop, steps=20, prompt=prompt)

or, for a diffusers pipeline called by your own code, hand it ``live.callback_on_step_end`` (a
diffusers ``PipelineCallback``, so ``MultiPipelineCallbacks([live.callback_on_step_end,
yours])`` composes it with your own callbacks)::

    stream_loop(lambda live: pipe(prompt, callback_on_step_end=live.callback_on_step_end)
                .images, steps=20, prompt=prompt)

The loop runs through the run engine like any backend: the states carry run ids (so Stop and
"Use this preview" reach it), previews are encoded in memory (no file per step), the finished
images go to the history strip. Stop makes ``live.step`` raise ``LoopStopped`` (and sets the
pipeline's ``_interrupt`` from the callback), which leaves the loop; "Use this preview" sets
``live.finish_requested`` (the callback also sets ``_interrupt``, and the pipeline decodes
the latents it has; a pipeline whose loop ignores ``_interrupt`` is left at once instead, and
the run decodes its latents as the pipeline's end would, so code after the pipeline call does
not run then).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .backend import Backend, Capabilities
from .channel import EventChannel
from .events import Failed, Finished, Started, Step

if TYPE_CHECKING:
    from .control import RunControl
    from .events import GenerationEvent, PreviewImage
    from .request import GenerationRequest
    from .run_state import RunState

Loop = Callable[["LiveSteps"], Any]
"""The author's loop: takes a ``LiveSteps``, returns the final image(s) (PIL)."""


class FinishedEarly(Exception):
    """Raised by ``live.callback_on_step_end`` on "Use this preview" when the pipeline's loop
    ignores ``_interrupt`` (Lumina, AuraFlow, LCM... in diffusers 0.42.1): it leaves the
    pipeline, and the run decodes ``latents`` as the pipeline's own end would."""

    def __init__(self, pipeline: Any, latents: Any) -> None:
        super().__init__("finished early")
        self.pipeline, self.latents = pipeline, latents


class LoopStopped(Exception):
    """Raised by ``LiveSteps.step`` when the run was stopped: leave the loop."""


class LiveSteps:
    """What a loop reports its steps to (one per run; made by ``stream_loop``)."""

    def __init__(
        self,
        request: GenerationRequest,
        control: RunControl,
        channel: EventChannel,
        family: str | None = None,
        preview_max_side: int = 512,
    ) -> None:
        self.request = request
        """The run's request (prompt, steps, size, seed...), filled in with the defaults."""
        self.total_steps = request.steps or 1
        self.steps_done = 0
        self._control, self._channel = control, channel
        self._family, self._max_side = family, preview_max_side
        self._previewer: Any = None
        self._callback: Any = None

    @property
    def stopped(self) -> bool:
        """True once the run was stopped (Stop, the tab closed, the API call cancelled)."""
        return self._control.cancelled

    @property
    def finish_requested(self) -> bool:
        """True once "Use this preview" was pressed: end the loop and return what you have."""
        return self._control.finish_requested

    def step(
        self,
        step: int | None = None,
        *,
        latents: Any = None,
        preview: PreviewImage | None = None,
    ) -> None:
        """Report that step ``step`` (1-based; default: the next one) is done, with a preview:
        ``latents`` (a ``(batch, channels, h, w)`` tensor, shown with the family's latent-to-RGB
        projection) or ``preview`` (a PIL image or ``HxWx3`` uint8 array). Raises
        ``LoopStopped`` when the run was stopped."""
        if self._control.cancelled:
            raise LoopStopped("the run was stopped")
        step = self.steps_done + 1 if step is None else int(step)
        self.steps_done = max(self.steps_done, min(step, self.total_steps))
        if preview is None and latents is not None:
            preview = self._project(latents)
        self._channel.put(Step(self.steps_done, self.total_steps, preview))

    @property
    def callback_on_step_end(self) -> Any:
        """A diffusers ``PipelineCallback`` that reports each step of a pipeline call here
        (made on first use; needs diffusers)."""
        if self._callback is None:
            from .loop_callback import make_callback

            self._callback = make_callback(self)
        return self._callback

    def _project(self, latents: Any) -> Any:
        from .backends.diffusers.latent_preview import LatentRGBPreviewer, preview_geometry

        latents = latents.detach()
        if latents.ndim == 3:
            latents = latents.unsqueeze(0)
        batch, channels, height, width = latents.shape
        if self._previewer is None:
            self._previewer = LatentRGBPreviewer(self._family or "", channels)
        geometry = preview_geometry(width, height, batch, self._max_side)
        return self._previewer.preview(latents, geometry).result()


class LoopBackend(Backend):
    """Runs one author's loop as a backend (see the module docstring)."""

    id = "loop"
    display_name = "Your loop"
    location = "local"
    capabilities = Capabilities(
        step_previews=True,
        negative_prompt=True,
        seed=True,
        guidance=True,
        cancel=True,
        finish_early=True,
        any_model=True,
        steps_range=(1, 10_000),
        default_steps=20,
        max_batch=16,
    )

    def __init__(
        self, loop: Loop, *, family: str | None = None, preview_max_side: int = 512
    ) -> None:
        if not callable(loop):
            raise TypeError(f"stream_loop needs a function taking a LiveSteps, got {loop!r}")
        self.loop, self.family, self.preview_max_side = loop, family, preview_max_side

    def default_model(self) -> str | None:
        return getattr(self.loop, "__name__", None) or "your loop"

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        channel = EventChannel(0.0)
        live = LiveSteps(request, control, channel, self.family, self.preview_max_side)
        worker = threading.Thread(
            target=self._work, args=(live, channel), name="gdp-loop", daemon=True
        )
        yield Started(
            total_steps=live.total_steps,
            model=request.model or "",
            seeds=[request.seed] if request.seed is not None else None,
            width=request.width or 0,
            height=request.height or 0,
            num_images=request.num_images,
        )
        worker.start()
        try:
            while True:
                event = channel.get(timeout=0.25)
                if event is None:
                    if channel.closed or control.cancelled:
                        return
                    continue
                yield event
                if isinstance(event, Finished | Failed):
                    return
        finally:
            control.cancel() if not channel.closed else None
            worker.join(5.0)

    def _work(self, live: LiveSteps, channel: EventChannel) -> None:
        request = live.request
        try:
            try:
                result = self.loop(live)
            except FinishedEarly as finished:
                from .backends.diffusers.finishing import decode_latents

                result = decode_latents(finished.pipeline, finished.latents)
            images = _images(result)
            channel.put(
                Finished(
                    images=images,
                    seeds=[request.seed] * len(images) if request.seed is not None else None,
                    early=live.finish_requested and live.steps_done < live.total_steps,
                    metadata={
                        "backend": "loop",
                        "model": request.model,
                        "prompt": request.prompt,
                        "steps": request.steps,
                        "steps_done": live.steps_done,
                    },
                )
            )
        except LoopStopped:
            pass
        except Exception as error:
            if not live.stopped:
                channel.put(
                    Failed(
                        f"Your generation loop raised {type(error).__name__}: {error}",
                        "backend_error",
                    )
                )
        finally:
            channel.close()


def _images(result: Any) -> list:
    """The loop's return value as a list of PIL images; a clear error otherwise."""
    import PIL.Image

    images = getattr(result, "images", result)  # a pipeline's output, too
    if isinstance(images, PIL.Image.Image):
        images = [images]
    if (
        not isinstance(images, Sequence)
        or not images
        or not all(isinstance(image, PIL.Image.Image) for image in images)
    ):
        raise TypeError(
            f"the loop must return a PIL image or a list of them, got {type(result).__name__}"
        )
    return list(images)


def stream_loop(
    loop: Loop,
    *,
    family: str | None = None,
    preview_max_side: int = 512,
    **fields: Any,
) -> Iterator[RunState]:
    """Run ``loop`` (your function, given a ``LiveSteps``) and yield the widget's states, as
    ``stream`` does for a backend. ``fields`` are the request's (``steps``, ``prompt``,
    ``width``, ``height``, ``seed``...): they label the run and reach the loop as
    ``live.request`` (``prompt`` defaults to the loop's name). ``family`` names the latent
    family for ``latents`` previews (``sd1``, ``sdxl``, ``sd3``, ``flux``; by default judged
    by the channel count)."""
    from .streaming import stream

    backend = LoopBackend(loop, family=family, preview_max_side=preview_max_side)
    fields.setdefault("prompt", backend.default_model())  # a loop may take no prompt at all
    return stream(backend, preview_max_side=preview_max_side, **fields)
