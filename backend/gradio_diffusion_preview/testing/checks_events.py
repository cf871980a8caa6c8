"""The checks that read one ordinary run: the order of its events, its step numbers and its
final images (its previews and its Status events have modules of their own).

Each public ``check_*`` makes a run (or reads the ``recording`` it is given, so that several
checks can share one); the ``expect_*`` functions hold the rules, and the other checks reuse
them on the runs they make.
"""

from __future__ import annotations

import math
from typing import Any

import PIL.Image

from ..backend import Backend
from ..events import FAILURE_REASONS, Failed, Finished, Started, Status, Step
from .defaults import DEFAULT_TIMEOUT
from .recording import Recording, fail_check, run_backend
from .report import describe_event


def check_event_order(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started, then Steps and Status events, then Finished or one Failed (with a known reason
    and a ``retry_after`` that is None or a finite number >= 0), then the generator returns;
    nothing raised, nothing after the end, no run without an end, no event of another type."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_event_order(rec, "event_order", allow_failed=True)


def check_steps(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started.total_steps is the request's steps; Steps count up from 1 to it, each carrying
    the same total; a run that finishes normally ends on the last step. A backend whose
    capabilities say ``step_events=False`` needs send no Steps, but any it sends keep these
    rules."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_event_order(rec, "steps")
    expect_steps(rec, "steps")


def check_final_images(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started and Finished describe the request (model, size, number of images, seed) and
    Finished carries that many PIL images of the requested size, with one seed each."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_finished_run(rec, "final_images")


def expect_finished_run(rec: Recording, check: str) -> None:
    """The run kept the event order and finished with the images it was asked for."""
    expect_event_order(rec, check)
    expect_final_images(rec, check)


def expect_event_order(rec: Recording, check: str, allow_failed: bool = False) -> None:
    """The rules of ``check_event_order``; a run that ends in Failed breaks them unless
    ``allow_failed``, and the end of a cancelled run is left to the cancel check."""
    if rec.error is not None:
        where = f"after {describe_event(rec.events[-1])}" if rec.events else "before any event"
        fail_check(
            rec,
            check,
            "failures reported as a Failed(message, reason) event, never raised",
            f"generate raised {type(rec.error).__name__}: {rec.error} ({where})",
        )
    if rec.timed_out:
        fail_check(
            rec,
            check,
            "each event within the time limit (timeout=...)",
            "the backend stopped producing events without returning",
        )
    for event in rec.events:
        if not isinstance(event, Started | Step | Status | Finished | Failed):
            fail_check(
                rec,
                check,
                "only Started, Step, Status, Finished and Failed events",
                f"a {type(event).__name__}",
            )
    if not rec.events:
        fail_check(
            rec,
            check,
            "Started, then Steps or Status events, then Finished or Failed",
            "no events at all",
        )
    first = rec.events[0]
    if isinstance(first, Failed):
        body = []
    elif isinstance(first, Started):
        body = rec.events[1:]
    else:
        fail_check(
            rec,
            check,
            "Started as the first event",
            describe_event(first),
            fix="yield Started before any Step or Status: a run queued at a service yields "
            "Started, then Status('queued', ...)"
            if isinstance(first, Status)
            else None,
        )
    started_twice = [e for e in body if isinstance(e, Started)]
    if started_twice:
        fail_check(rec, check, "Started exactly once, first", "a second Started")
    ends = [i for i, e in enumerate(rec.events) if isinstance(e, Finished | Failed)]
    if rec.signal == "cancel":
        return  # the cancel check judges the end of a cancelled run
    if not ends:
        fail_check(
            rec,
            check,
            "the run to end with Finished or Failed",
            "the generator returned without either" if rec.ended else "no end",
        )
    if len(rec.events) > ends[0] + 1:
        fail_check(
            rec,
            check,
            "nothing after the first Finished or Failed",
            f"{describe_event(rec.events[ends[0] + 1])} after "
            f"{describe_event(rec.events[ends[0]])}",
        )
    if not rec.ended:
        fail_check(rec, check, "the generator to return after its last event", "it kept running")
    if isinstance(rec.events[-1], Failed):
        expect_failure_well_formed(rec, check, rec.events[-1])
        if not allow_failed:
            fail_check(rec, check, "a valid request to finish", f"Failed: {rec.events[-1].message}")


def expect_failure_well_formed(rec: Recording, check: str, failed: Failed) -> None:
    """A Failed event says what went wrong for a person, why for code (a known reason) and,
    at most, when to try again (``retry_after``: None or seconds, finite and >= 0)."""
    if not isinstance(failed.message, str) or not failed.message.strip():
        fail_check(
            rec,
            check,
            "Failed.message to say what went wrong and how to fix it",
            repr(failed.message),
        )
    if failed.reason not in FAILURE_REASONS:
        fail_check(
            rec,
            check,
            f"Failed.reason to be one of {', '.join(FAILURE_REASONS)}",
            repr(failed.reason),
            fix="pick the reason that says what a caller can do (see the table of failure "
            "reasons in docs/plugins.md); backend_error when nothing else fits",
        )
    retry = failed.retry_after
    if retry is not None and (
        isinstance(retry, bool)
        or not isinstance(retry, int | float)
        or not math.isfinite(retry)
        or retry < 0
    ):
        fail_check(
            rec,
            check,
            "Failed.retry_after to be None or a finite number of seconds >= 0",
            repr(retry),
            fix="pass the seconds the service asked to wait (e.g. its Retry-After header), "
            "or None when it did not say",
        )


def expect_steps(rec: Recording, check: str) -> None:
    """The rules of ``check_steps``."""
    started, steps = rec.started, rec.steps
    if started is None:
        fail_check(rec, check, "a Started event", "none")
    if started.total_steps != rec.request.steps:
        fail_check(
            rec,
            check,
            f"Started.total_steps to be the request's steps ({rec.request.steps})",
            f"total_steps={started.total_steps}",
        )
    numbers = [s.step for s in steps]
    for s in steps:
        if s.total_steps != started.total_steps:
            fail_check(
                rec,
                check,
                f"every Step.total_steps to be {started.total_steps}, as Started said",
                f"Step {s.step} with total_steps={s.total_steps}",
            )
    if any(not isinstance(n, int) or not 1 <= n <= started.total_steps for n in numbers):
        fail_check(rec, check, f"step numbers from 1 to {started.total_steps}", f"steps {numbers}")
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        fail_check(rec, check, "step numbers that increase", f"steps {numbers}")
    if not rec.capabilities.step_events:
        return  # a backend that waits on a service need not report every step, or any
    finished = rec.finished
    if finished is not None and not finished.early and started.total_steps:
        if not numbers:
            fail_check(
                rec,
                check,
                f"Step events (1..{started.total_steps}) before Finished",
                "none",
                fix="yield Step(step, total_steps) after each step; a backend that waits on a "
                "service reporting no steps declares Capabilities(step_events=False, "
                "step_previews=False) and yields Status events instead",
            )
        if numbers[-1] != started.total_steps:
            fail_check(
                rec,
                check,
                f"the last Step before Finished to be {started.total_steps}",
                f"the last was {numbers[-1]}",
            )


def expect_final_images(rec: Recording, check: str) -> None:
    """The rules of ``check_final_images``: Started and Finished describe the request, and
    Finished carries its images."""
    req, started, finished = rec.request, rec.started, rec.finished
    if finished is None:
        failed = rec.failed
        fail_check(
            rec,
            check,
            "Finished for a valid request",
            f"Failed: {failed.message}" if failed else "no Finished event",
        )
    if started is not None:
        if (started.width, started.height) != (req.width, req.height):
            fail_check(
                rec,
                check,
                f"Started to announce {req.width}x{req.height}",
                f"{started.width}x{started.height}",
            )
        if started.num_images != req.num_images or len(started.seeds) != req.num_images:
            fail_check(
                rec,
                check,
                f"Started to announce {req.num_images} image(s) with one seed each",
                f"num_images={started.num_images}, seeds={started.seeds}",
            )
        if req.seed is not None and started.seeds and started.seeds[0] != req.seed:
            fail_check(
                rec,
                check,
                f"the first seed to be the request's seed ({req.seed})",
                f"seeds={started.seeds}",
            )
        if finished.seeds != started.seeds:
            fail_check(
                rec,
                check,
                f"Finished.seeds to be the seeds Started announced ({started.seeds})",
                f"{finished.seeds}",
            )
    images = finished.images
    if not isinstance(images, list) or len(images) != req.num_images:
        count = len(images) if isinstance(images, list) else type(images).__name__
        fail_check(rec, check, f"{req.num_images} final image(s) in a list", f"{count}")
    if len(finished.seeds) != len(images):
        fail_check(
            rec, check, "one seed per final image", f"{len(images)} images, seeds {finished.seeds}"
        )
    for index, image in enumerate(images):
        if not isinstance(image, PIL.Image.Image):
            fail_check(
                rec,
                check,
                "final images that are PIL images",
                f"image {index}: {type(image).__name__}",
            )
        if image.size != (req.width, req.height):
            fail_check(
                rec,
                check,
                f"final images of the requested {req.width}x{req.height}",
                f"image {index} is {image.width}x{image.height}",
            )
