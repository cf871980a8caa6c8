"""The example backend: procedural fractals that "denoise" into view step by step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import PIL.Image
from pydantic import Field

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ModelInfo,
    Options,
    RunControl,
    Started,
    Step,
)

from . import fractal

MAX_STEP_DELAY = 5.0


class FractalOptions(Options):
    """The request options this backend understands, typed: the central validation checks
    them before generate runs (a palette not listed, a delay out of range is refused there,
    naming the option, the value and what is allowed)."""

    palette: Literal[tuple(sorted(fractal.PALETTES))] | None = Field(  # type: ignore[valid-type]
        None, description="colours (default: picked by the prompt)"
    )
    step_delay: float = Field(
        0,
        ge=0,
        le=MAX_STEP_DELAY,
        description="seconds to wait after each step, to watch the preview form",
    )


class FractalBackend(Backend):
    """Draws the Mandelbrot set or a Julia set: the prompt picks the view and the palette, the
    seed moves the view and fixes the noise the run starts from."""

    id = "example-fractal"
    display_name = "Example: procedural fractals"
    location = "local"
    capabilities = Capabilities(
        negative_prompt=False,  # validation rejects a negative prompt before generate runs
        guidance=False,
        size_multiple=8,
        min_size=64,
        max_size=1024,
        default_size=(512, 512),
        steps_range=(1, 100),
        default_steps=20,
        max_batch=4,
        finish_early=True,
        options=FractalOptions,  # option_choices (the palettes) derive from it
    )

    def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id="mandelbrot",
                name="Mandelbrot set",
                description="A view into the Mandelbrot set picked by the prompt.",
            ),
            ModelInfo(
                id="julia",
                name="Julia set",
                description="A Julia set whose constant the prompt and seed pick.",
            ),
        ]

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        # The request is validated and resolved: model, steps, seed, width and height are set,
        # and its options were checked through FractalOptions (only those given are present).
        palette = request.options.get("palette") or fractal.palette_for(
            request.prompt, request.model
        )
        delay = request.options.get("step_delay", 0)

        steps, width, height = request.steps, request.width, request.height
        seeds = request.image_seeds()  # image i: (seed + i) % 2**32
        yield Started(
            total_steps=steps,
            model=request.model,
            seeds=seeds,
            width=width,
            height=height,
            num_images=len(seeds),
            preview_size=(width // 2, height // 2),
        )
        finals = [
            fractal.render(request.model, request.prompt, seed, width, height, palette)
            for seed in seeds
        ]
        starts = [fractal.noise(seed, width, height) for seed in seeds]

        def estimate(step: int) -> list:
            return [
                fractal.denoised(final, start, step / steps)
                for final, start in zip(finals, starts, strict=True)
            ]

        for step in range(1, steps + 1):
            # Once per step: stop at once on cancel; on "finish early" the current estimate is
            # the result (that is what capabilities.finish_early promises).
            if control.cancelled:
                return
            if control.finish_requested and step > 1:
                yield self._finished(estimate(step - 1), seeds, palette, early=True)
                return
            current = estimate(step)
            # A preview is an HxWx3 uint8 array (or a PIL image) of the size Started declared.
            yield Step(step, steps, preview=fractal.to_uint8(fractal.half_size(current[0])))
            if delay and control.wait_cancelled(delay):
                return
        yield self._finished(estimate(steps), seeds, palette, early=False)

    def _finished(self, images: list, seeds: list[int], palette: str, early: bool) -> Finished:
        return Finished(
            images=[PIL.Image.fromarray(fractal.to_uint8(image)) for image in images],
            seeds=seeds,
            metadata={"palette": palette},
            early=early,
        )
