"""RunProgress: turns one run's events into its states (steps, waiting phases, ETAs, the end),
and the last states of runs that end without a result of their own (timed out, cancelled, a
backend that stopped without a word)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import PIL.Image

from .control import RunControl
from .events import (
    Cancelled,
    Failed,
    Finished,
    GenerationEvent,
    ImageReady,
    Started,
    Status,
    Step,
    is_job_url,
)
from .generation_info import params_finished, params_started
from .preview_encoding import InvalidPreview, encode_previews
from .progress import RUN_DURATIONS, ProgressClock
from .run_state import GenerationParams, RunState

CANCEL_REFUSED = "Cancel was refused by the service: the job may still run."
"""What a person reads when the service did not stop the job it was asked to cancel."""

PHASE_TEXT = {
    "queued": "Queued at the service…",
    "loading": "Loading the model…",
    "generating": "Generating…",
    "fetching": "Fetching the result…",
}


class RunProgress:
    """Turns one run's events into its states: steps, waiting phases, ETAs, the end."""

    def __init__(
        self,
        backend_id: str,
        model: str | None,
        preview_max_side: int,
        clock: Callable[[], float] = time.monotonic,
        waited: float | None = None,
    ) -> None:
        """``waited``: the seconds the run waited in this app's queue before it came here."""
        self.backend_id, self.model = backend_id, model
        self.preview_max_side = preview_max_side
        self.clock = ProgressClock(clock)
        self.total = ProgressClock(clock)
        """Since the run came here, waiting at the service included (the app's time limit)."""
        self.waited = waited
        self._queued = False
        """Whether the run waits in the service's queue (a ``Status("queued")`` came last)."""

    def _leave_queue(self, event: GenerationEvent) -> None:
        """The service's queue counts as waiting, not running: a ``Status("queued")`` starts
        a wait (counted from the run's start: a service shows it once the run is in line);
        the first event after it that is not one (a step, another phase, the end) ends it,
        and ``elapsed`` counts from there."""
        if isinstance(event, Status) and event.phase == "queued":
            self._queued = True
        elif self._queued and not isinstance(event, Started):
            self._queued = False
            self.waited = (self.waited or 0.0) + self.clock.restart()

    def tick(self, state: RunState) -> RunState:
        """A heartbeat with no event: the elapsed time, and a waiting run's ETA counted down."""
        update: dict[str, Any] = {"elapsed": self.clock.elapsed}
        if state.phase is not None:
            update["eta"] = self._wait_eta()
        return state.model_copy(update=update)

    def _wait_eta(self) -> float | None:
        return self.clock.wait_eta(RUN_DURATIONS.expected(self.backend_id, self.model))

    def apply(self, state: RunState, event: GenerationEvent) -> RunState:
        """The state after ``event`` (its ``waited`` kept up to date)."""
        self._leave_queue(event)
        state = self._apply(state, event)
        return (
            state
            if state.waited == self.waited
            else state.model_copy(update={"waited": self.waited})
        )

    def _apply(self, state: RunState, event: GenerationEvent) -> RunState:
        clock = self.clock
        if isinstance(event, Started):
            return state.model_copy(
                update={
                    "total_steps": event.total_steps or 0,
                    "model": event.model,
                    "seeds": list(event.seeds or []),
                    "width": event.width,
                    "height": event.height,
                    "message": None,
                    "elapsed": clock.elapsed,
                    "params": with_job(params_started(state.params, event), event),
                }
            )
        if isinstance(event, Status):
            clock.service_said(event.eta)
            return state.model_copy(
                update={
                    "params": with_job(state.params, event),
                    "phase": event.phase,
                    "message": event.message or PHASE_TEXT.get(event.phase),
                    "queue_position": event.position,
                    "queue_size": event.queue_size,
                    "progress": fraction_done(event.progress),
                    "elapsed": clock.elapsed,
                    "eta": self._wait_eta(),
                }
            )
        if isinstance(event, Step):
            clock.step(event.step)
            preview, previews = state.preview, state.previews
            if event.preview is not None:
                try:
                    preview, previews = encode_previews(event.preview, self.preview_max_side)
                except InvalidPreview as error:
                    return self._failed(
                        state,
                        Failed(
                            f"Backend '{self.backend_id}' sent a preview that is not an image at "
                            f"step {event.step}: {error}. This is a bug in the backend; report "
                            "it to its authors.",
                            "backend_error",
                        ),
                    )
            return state.model_copy(
                update={
                    "step": event.step,
                    "total_steps": event.total_steps,
                    "preview": preview,
                    "previews": previews,
                    "phase": None,
                    "queue_position": None,
                    "queue_size": None,
                    "progress": None,
                    "elapsed": clock.elapsed,
                    "steps_per_second": clock.steps_per_second(),
                    "eta": clock.eta(event.total_steps),
                    "message": None,
                }
            )
        if isinstance(event, ImageReady):
            return self._image_ready(state, event)
        if isinstance(event, Finished):
            if not event.early:
                rate = clock.steps_per_second()
                RUN_DURATIONS.record(
                    self.backend_id,
                    self.model,
                    clock.elapsed,
                    state.total_steps or None,
                    1 / rate if rate else None,
                )
            message = (
                f"Finished early at step {state.step} of {state.total_steps}."
                if event.early
                else None
            )
            return state.model_copy(
                update={
                    "status": "done",
                    "images": list(event.images),
                    "ready": [],
                    "seeds": list(event.seeds or []),
                    # the final images replace the preview: it need not travel again in the
                    # event's last message, nor stay in Gradio's store of each session's value
                    "preview": None if event.images else state.preview,
                    "previews": [] if event.images else state.previews,
                    # a run that reported no steps (a service that only waits) claims none
                    "step": state.step if event.early or not state.step else state.total_steps,
                    "phase": None,
                    "queue_position": None,
                    "queue_size": None,
                    "progress": None,
                    "eta": 0.0,
                    "elapsed": clock.elapsed,
                    "message": message,
                    "params": params_finished(state.params, event, state.step),
                }
            )
        if isinstance(event, Failed):
            return self._failed(state, event)
        if isinstance(event, Cancelled):
            return self.cancelled(state, event)
        raise TypeError(f"unknown event {event!r}")

    def timed_out(self, state: RunState, time_limit: float) -> RunState:
        """The last state of a run stopped at the app's time limit."""
        return state.model_copy(
            update={
                "status": "error",
                "message": f"The run took longer than this app's limit of {time_limit:g} s and was "
                "stopped. Fix: ask for fewer steps, a smaller size or fewer images.",
                "reason": "timeout",
                "elapsed": self.clock.elapsed,
                "phase": None,
                "progress": None,
                "eta": None,
            }
        )

    def cancelled(self, state: RunState, event: Cancelled) -> RunState:
        """The last state of a cancelled run whose backend passed the cancel on to a service,
        with the service's answer: stopped, or refused (the job may still run)."""
        detail = event.detail.strip() if isinstance(event.detail, str) else ""
        if event.acknowledged:
            message = f"Cancelled. {detail}" if detail else "Cancelled."
        else:
            message = CANCEL_REFUSED + (f" ({detail})" if detail else "")
        return state.model_copy(
            update={
                "status": "cancelled",
                "message": message,
                "cancel_acknowledged": bool(event.acknowledged),
                "reason": None,
                "elapsed": self.clock.elapsed,
                "phase": None,
                "progress": None,
                "eta": None,
            }
        )

    def ended_without_result(self, state: RunState, control: RunControl) -> RunState:
        """The last state of a run whose backend stopped yielding without Finished or Failed."""
        if control.cancelled or control.finish_requested:
            status, message, reason = "cancelled", "Cancelled.", None
        else:
            status, reason = "error", "backend_error"
            message = (
                f"Backend '{self.backend_id}' stopped without a result or an error; "
                "report this to its authors."
            )
        return state.model_copy(
            update={
                "status": status,
                "message": message,
                "reason": reason,
                "elapsed": self.clock.elapsed,
                "phase": None,
                "progress": None,
            }
        )

    def _image_ready(self, state: RunState, event: ImageReady) -> RunState:
        """A final image that arrived before the end joins the value's ``images`` (in the
        batch's order, ``ready`` saying which each is); one that is not a PIL image fails
        the run as a backend bug (so does an index outside the batch), and one sent again
        replaces the first."""
        count = state.params.num_images if state.params is not None else None
        index = event.index
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or index < 0
            or (count is not None and index >= count)
        ):
            return self._failed(
                state,
                Failed(
                    f"Backend '{self.backend_id}' sent an image with index {index!r}, not one "
                    f"of the batch's 0..{(count or 1) - 1}. This is a bug in the backend; "
                    "report it to its authors.",
                    "backend_error",
                ),
            )
        if not isinstance(event.image, PIL.Image.Image):
            return self._failed(
                state,
                Failed(
                    f"Backend '{self.backend_id}' sent image {event.index} as a "
                    f"{type(event.image).__name__}, not a PIL image. This is a bug in the "
                    "backend; report it to its authors.",
                    "backend_error",
                ),
            )
        arrived = dict(zip(state.ready, state.images, strict=False))
        arrived[event.index] = event.image
        order = sorted(arrived)
        return state.model_copy(
            update={
                "ready": order,
                "images": [arrived[index] for index in order],
                "elapsed": self.clock.elapsed,
            }
        )

    def _failed(self, state: RunState, event: Failed) -> RunState:
        return state.model_copy(
            update={
                "status": "error",
                "message": event.message,
                "reason": event.reason,
                "retry_after": event.retry_after,
                "phase": None,
                "progress": None,
                "elapsed": self.clock.elapsed,
                "eta": None,
            }
        )


def with_job(params: GenerationParams | None, event: Started | Status) -> GenerationParams | None:
    """The run's settings with the service's job id and link, when ``event`` names them (a
    later event that names none keeps what an earlier one said). A link that is not an
    ``http(s)`` URL is never shown (the conformance kit reports it to the backend's author)."""
    job_id, job_url = getattr(event, "job_id", None), getattr(event, "job_url", None)
    update: dict[str, str] = {}
    if isinstance(job_id, str) and job_id.strip():
        update["job_id"] = job_id.strip()
    if job_url is not None and is_job_url(job_url):
        update["job_url"] = job_url
    if params is None or not update:
        return params
    return params.model_copy(update=update)


def fraction_done(progress: object) -> float | None:
    """A Status's ``progress`` as the state shows it: a number held to 0..1, or None for none
    (or for a value that is not a finite number, which the conformance kit reports)."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        return None
    if not math.isfinite(progress):
        return None
    return min(max(float(progress), 0.0), 1.0)
