"""The state of one run, as the run engine produces it: ``RunState`` (final images as PIL
images) and the run's settings, ``GenerationParams``.

This module does not import Gradio: the engine that makes these states runs without it. The wire
form the browser and API clients receive is ``state.PreviewData``, which shares ``RunFields``.
"""

from __future__ import annotations

from typing import Literal

import PIL.Image
from pydantic import BaseModel, ConfigDict, Field

from .events import FailureReason, Phase

RunStatus = Literal["idle", "queued", "running", "done", "cancelled", "error"]


class GenerationParams(BaseModel):
    """What a run was asked to make, as resolved by validation: enough to label its images and
    to make them again. Image ``i`` of a batch has seed ``seeds[i]`` of the run; ``seed`` here is
    the first image's. ``model`` is a display name: a model given as a local folder shows only
    the folder's name, never a server path."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    num_images: int = 1
    seed: int | None = None
    model: str | None = None
    backend: str | None = None
    sampler: str | None = Field(None, description="The sampler or scheduler, when known.")
    steps_done: int | None = Field(
        None, description="Steps actually run, when the run was finished early."
    )
    job_id: str | None = Field(
        None, description="The service's own id for the job that made the images, when it has one."
    )
    job_url: str | None = Field(
        None, description="A link (http or https) to that job at the service, when it gives one."
    )
    strength: float | None = Field(
        None,
        description="Denoising strength of an image-to-image run (0 keeps the input, 1 "
        "remakes it all); None for text-to-image.",
    )


class RunCapabilities(BaseModel):
    """What the running backend can do for this run, so a UI offers only that."""

    cancel: bool = Field(True, description="Stop ends the backend's work (it stops promptly).")
    finish_early: bool = Field(
        False, description="'Use this preview' works: the current estimate becomes the result."
    )
    cancel_confirms: bool = Field(
        False,
        description="Stop is passed on to a service, whose answer ends the run: the run goes on "
        "streaming ('Stopping…') until it comes.",
    )


class RunFields(BaseModel):
    """The fields both forms share."""

    run_id: str | None = Field(None, description="Identifies the run, e.g. to finish it early.")
    status: RunStatus = "idle"
    step: int = Field(0, description="Denoising steps done so far.")
    total_steps: int = 0
    preview: str | None = Field(
        None, description="The latest preview as a small JPEG/WebP data URL (no file)."
    )
    previews: list[str] = Field(
        default_factory=list,
        description="One preview data URL per image of a batch, when the backend previews "
        "each image (``preview`` is then null).",
    )
    phase: Phase | None = Field(
        None,
        description="What a waiting run is doing (queued at the service, loading, generating "
        "with no steps to report, fetching); null while steps are reported.",
    )
    queue_position: int | None = Field(
        None, description="The run's place in the service's queue (1 = next), when it says."
    )
    queue_size: int | None = Field(None, description="The service's queue length, when it says.")
    elapsed: float = Field(
        0.0,
        description="Seconds since the run started running; while it waits in a queue (this "
        "app's or the service's), seconds since it started waiting.",
    )
    waited: float | None = Field(
        None,
        description="Seconds the run waited in a queue (this app's, then the service's) "
        "before it started running; not counted in ``elapsed`` once it runs. Null when it "
        "never waited.",
    )
    steps_per_second: float | None = None
    eta: float | None = Field(None, description="Estimated seconds left.")
    progress: float | None = Field(
        None,
        description="The fraction of a waiting run's work done (0 to 1), when the service "
        "says; null while steps are reported.",
    )
    seeds: list[int] = Field(default_factory=list)
    ready: list[int] = Field(
        default_factory=list,
        description="While a run goes: the indices (0-based, in the batch) of the final images "
        "that arrived before the end, in order; ``images`` holds them in this order. Empty "
        "once the run is done (``images`` then holds every image).",
    )
    backend: str | None = None
    model: str | None = None
    width: int | None = None
    height: int | None = None
    message: str | None = Field(None, description="What went wrong, or a note about the run.")
    reason: FailureReason | None = Field(
        None,
        description="Why the run failed, for code: invalid_request, model_not_found, "
        "unauthorized, rate_limited, busy, unavailable, timeout, content_filtered, "
        "out_of_memory, remote_error or backend_error.",
    )
    retry_after: float | None = Field(
        None, description="Seconds after which trying again may succeed, when known."
    )
    cancel_acknowledged: bool | None = Field(
        None,
        description="For a cancelled run whose backend passed the cancel on to a service: "
        "true when the service stopped the job, false when it refused or could not be "
        "reached (the job may still run); null when not known.",
    )
    capabilities: RunCapabilities | None = Field(
        None,
        description="What the running backend can do for this run (cancel, finish early); "
        "null when unknown (a state an app made itself).",
    )
    params: GenerationParams | None = Field(
        None,
        description="The run's settings (prompt, negative prompt, seed, steps, guidance, size, "
        "model, backend, sampler), to label its images and to reuse them.",
    )


class RunState(RunFields):
    """A run's state on the Python side; ``images`` are the final images once done."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    images: list[PIL.Image.Image] = Field(default_factory=list)
    input_image: PIL.Image.Image | None = Field(
        None,
        description="An edit's input picture (RGB, at the output's size) from the run's start "
        "to its end: the first frame, and the 'before' of a finished edit. None for "
        "text-to-image.",
    )
