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
from ..events import (
    FAILURE_REASONS,
    Cancelled,
    Failed,
    Finished,
    ImageReady,
    Started,
    Status,
    Step,
    is_job_url,
)
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
    """Started, then Steps and Status events (and ImageReady, each image of a batch at most
    once, then a Finished that carries them all), then Finished or one Failed (with a known
    reason and a ``retry_after`` that is None or a finite number >= 0), then the generator
    returns; nothing raised, nothing after the end, no run without an end, no event of another
    type; a ``job_id`` a non-empty str and a ``job_url`` an http(s) URL, when given."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_event_order(rec, "event_order", allow_failed=True)


def check_steps(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Step numbers are whole numbers from 1 that increase (steps may be skipped). With
    ``exact_steps`` (the default), Started.total_steps is the request's steps, every Step
    carries it, and a run that finishes normally ends on the last step; with
    ``exact_steps=False`` (progress read from a service), each Step carries the service's own
    total, no step is beyond it and the last may be missed. A backend whose capabilities say
    ``step_events=False`` needs send no Steps, but any it sends keep these rules."""
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
    Finished carries that many PIL images of the requested size, with one seed each (the same
    one when ``seed_per_image=False``; ``seeds=None`` when ``seed=False``)."""
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
            fix="catch the error inside generate and yield Failed(message, reason) instead, "
            "with a message that says what the user can do and the reason from the table in "
            "docs/plugins.md",
        )
    if rec.timed_out:
        fail_check(
            rec,
            check,
            "each event within the time limit (timeout=...)",
            "the backend stopped producing events without returning",
            fix="yield an event while you wait (a Status after each poll of a service) and "
            "never block without a bound; a backend that is slow here passes a larger "
            "timeout=... to the kit",
        )
    for event in rec.events:
        if isinstance(event, Cancelled) and rec.signal != "cancel":
            fail_check(
                rec,
                check,
                "Cancelled only as the last event of a cancelled run",
                f"{describe_event(event)} in a run that was not cancelled",
                fix="yield Cancelled(acknowledged, detail) only once control.cancelled is True "
                "and the service has answered the cancel; end other runs with Finished or Failed",
            )
        if not isinstance(event, Started | Step | Status | ImageReady | Finished | Failed):
            if isinstance(event, Cancelled):
                continue
            fail_check(
                rec,
                check,
                "only Started, Step, Status, ImageReady, Finished, Failed and Cancelled events",
                f"a {type(event).__name__}",
                fix="yield only gradio_diffusion_preview's events (Started, Step, Status, "
                "ImageReady, Finished, Failed, Cancelled); say anything else in a Status message",
            )
    if not rec.events:
        fail_check(
            rec,
            check,
            "Started, then Steps or Status events, then Finished or Failed",
            "no events at all",
            fix="make generate a generator that yields Started(...) first and ends with "
            "Finished or Failed (is a `yield` missing, or does it return before its first?)",
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
            else "yield Started(total_steps, model, seeds, width, height, num_images) as the "
            "first event; a run that cannot start yields one Failed(message, reason) instead",
        )
    started_twice = [e for e in body if isinstance(e, Started)]
    if started_twice:
        fail_check(
            rec,
            check,
            "Started exactly once, first",
            "a second Started",
            fix="yield Started once, at the beginning; report later stages (a model loading, a "
            "place in a queue) as Status events",
        )
    ends = [i for i, e in enumerate(rec.events) if isinstance(e, Finished | Failed)]
    if rec.signal == "cancel":
        return  # the cancel check judges the end of a cancelled run
    if not ends:
        fail_check(
            rec,
            check,
            "the run to end with Finished or Failed",
            "the generator returned without either" if rec.ended else "no end",
            fix="end every run that is not cancelled with Finished(images, seeds) or "
            "Failed(message, reason); a generator that just returns leaves the user waiting",
        )
    if len(rec.events) > ends[0] + 1:
        fail_check(
            rec,
            check,
            "nothing after the first Finished or Failed",
            f"{describe_event(rec.events[ends[0] + 1])} after "
            f"{describe_event(rec.events[ends[0]])}",
            fix="return from generate right after yielding Finished or Failed",
        )
    if not rec.ended:
        fail_check(
            rec,
            check,
            "the generator to return after its last event",
            "it kept running",
            fix="return right after Finished or Failed; stop polling and join worker threads "
            "before yielding the end, not after",
        )
    expect_job_links(rec, check)
    expect_images_ready(rec, check)
    if isinstance(rec.events[-1], Failed):
        expect_failure_well_formed(rec, check, rec.events[-1])
        if not allow_failed:
            fail_check(
                rec,
                check,
                "a valid request to finish",
                f"Failed: {rec.events[-1].message}",
                fix="make the kit's request one the backend can run: pass request fields it "
                "serves (a model, a size, options) and start or configure the service it needs "
                "in a fixture",
            )


READY_FIX = (
    "send each image of the batch once, as ImageReady(index, image, seed) with index 0 to "
    "num_images - 1, a PIL image of the requested size and the seed Started gave that image "
    "(or None); then Finished with every image, those already sent included, in order"
)


def expect_images_ready(rec: Recording, check: str) -> None:
    """The images sent one by one before the end (``ImageReady``): each index of the batch at
    most once, a PIL image of the requested size, the seed ``Started`` gave it (or None), and
    a ``Finished`` that still carries every image of the batch."""
    ready = [e for e in rec.events if isinstance(e, ImageReady)]
    if not ready:
        return
    req, started = rec.request, rec.started
    seen: set[int] = set()
    for event in ready:
        index = event.index
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < req.num_images:
            fail_check(rec, check, f"ImageReady.index from 0 to {req.num_images - 1}",
                       f"index={index!r}", fix=READY_FIX)  # fmt: skip
        if index in seen:
            fail_check(rec, check, "each image sent with ImageReady at most once",
                       f"image {index} twice", fix=READY_FIX)  # fmt: skip
        seen.add(index)
        image = event.image
        if not isinstance(image, PIL.Image.Image) or image.size != (req.width, req.height):
            fail_check(
                rec,
                check,
                f"ImageReady.image to be a PIL image of {req.width}x{req.height}",
                f"image {index}: {describe_event(event)}",
                fix=READY_FIX,
            )
        seeds = started.seeds if started is not None else None
        if event.seed is not None and (not seeds or event.seed != seeds[index]):
            fail_check(
                rec,
                check,
                f"ImageReady.seed to be the seed Started gave image {index}, or None",
                f"seed={event.seed!r}, Started.seeds={seeds!r}",
                fix=READY_FIX,
            )
    finished = rec.finished
    if finished is not None and (
        not isinstance(finished.images, list) or len(finished.images) != req.num_images
    ):
        count = len(finished.images) if isinstance(finished.images, list) else "no list of"
        fail_check(
            rec,
            check,
            f"Finished to carry all {req.num_images} image(s), those sent with ImageReady too",
            f"{count} image(s) after {len(ready)} ImageReady",
            fix=READY_FIX,
        )


def expect_job_links(rec: Recording, check: str) -> None:
    """The service's job id and link on Started and Status events, when given: an id is a
    non-empty str, a link an ``http://`` or ``https://`` URL (the widget shows it as a link)."""
    for event in rec.events:
        if not isinstance(event, Started | Status):
            continue
        job_id, job_url = getattr(event, "job_id", None), getattr(event, "job_url", None)
        if job_id is not None and (not isinstance(job_id, str) or not job_id.strip()):
            fail_check(
                rec,
                check,
                f"{type(event).__name__}.job_id to be None or the service's id as a non-empty str",
                f"job_id={job_id!r}",
                fix="pass the id the service gave the job as a str (str(prediction['id'])), "
                "or None before the service has named it",
            )
        if job_url is not None and not is_job_url(job_url):
            fail_check(
                rec,
                check,
                f"{type(event).__name__}.job_url to be None or an http:// or https:// URL",
                f"job_url={job_url!r}",
                fix="pass the absolute http(s) address of the job's page at the service (join a "
                "relative path to the service's base URL), or None when it has no page",
            )


def expect_failure_well_formed(rec: Recording, check: str, failed: Failed) -> None:
    """A Failed event says what went wrong for a person, why for code (a known reason) and,
    at most, when to try again (``retry_after``: None or seconds, finite and >= 0)."""
    if not isinstance(failed.message, str) or not failed.message.strip():
        fail_check(
            rec,
            check,
            "Failed.message to say what went wrong and how to fix it",
            repr(failed.message),
            fix="pass Failed a message for a person: what went wrong and what to do, e.g. "
            '"The service refused the token. Set HF_TOKEN to a valid token."',
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
    started, steps, caps = rec.started, rec.steps, rec.capabilities
    if started is None:
        fail_check(
            rec,
            check,
            "a Started event",
            "none",
            fix="yield Started(total_steps, model, seeds, width, height, num_images) before "
            "any Step",
        )
    numbers = [s.step for s in steps]
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in numbers):
        fail_check(
            rec,
            check,
            "step numbers that are whole numbers from 1",
            f"steps {numbers}",
            fix="number steps with ints from 1 (Step 1 is the first step done, never 0); "
            "convert a service's float or string progress with int(...)",
        )
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        fail_check(
            rec,
            check,
            "step numbers that increase",
            f"steps {numbers}",
            fix="yield each step once, in order; when a polled service reports the same step "
            "again, yield nothing for it",
        )
    if not caps.exact_steps:
        expect_own_count(rec, check, started, steps)
        return
    if started.total_steps != rec.request.steps:
        fail_check(
            rec,
            check,
            f"Started.total_steps to be the request's steps ({rec.request.steps})",
            f"total_steps={started.total_steps}",
            fix=OWN_COUNT_FIX,
        )
    for s in steps:
        if s.total_steps != started.total_steps:
            fail_check(
                rec,
                check,
                f"every Step.total_steps to be {started.total_steps}, as Started said",
                f"Step {s.step} with total_steps={s.total_steps}",
                fix=OWN_COUNT_FIX,
            )
    if any(n > started.total_steps for n in numbers):
        fail_check(
            rec,
            check,
            f"step numbers from 1 to {started.total_steps}",
            f"steps {numbers}",
            fix="number the steps from 1 to total_steps (step 1 is the first one done)",
        )
    if not caps.step_events:
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
                fix="yield the last step too; a backend that reads progress from a service "
                "(polled, so the last step may be missed) declares "
                "Capabilities(exact_steps=False)",
            )


OWN_COUNT_FIX = (
    "give Started and every Step the request's steps as total_steps; a backend that reports "
    "a service's own count (progress read from its logs) declares Capabilities("
    "exact_steps=False), and one that takes no number of steps Capabilities(steps=False)"
)


def expect_own_count(rec: Recording, check: str, started: Started, steps: list[Step]) -> None:
    """The step rules for a backend whose progress is a service's own count
    (``exact_steps=False``): totals are whole numbers >= 1 (Started's may be None), and no
    step is beyond its own total."""
    total = started.total_steps
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 1):
        fail_check(
            rec,
            check,
            "Started.total_steps to be None or a whole number >= 1",
            repr(total),
            fix="pass the number of steps the run will report, or None when it cannot say",
        )
    for s in steps:
        if not isinstance(s.total_steps, int) or isinstance(s.total_steps, bool):
            fail_check(
                rec,
                check,
                "every Step.total_steps to be a whole number",
                f"Step {s.step} with total_steps={s.total_steps!r}",
                fix="pass the service's own count of steps, as it reports it",
            )
        if s.step > s.total_steps:
            fail_check(
                rec,
                check,
                "no step beyond its own total_steps",
                f"Step {s.step} of {s.total_steps}",
                fix="pass the step and the total the service reports together",
            )


SEED_FIX = (
    "give Started and Finished one seed per image, the first the request's seed "
    "(request.image_seeds()); a service that takes one seed for a whole batch declares "
    "Capabilities(seed_per_image=False) and repeats it (request.image_seeds(False)), and one "
    "that cannot be seeded declares Capabilities(seed=False) and passes seeds=None"
)


def expect_seeds(rec: Recording, check: str, where: str, seeds: list[int] | None) -> None:
    """Seeds that say nothing false: one per image starting with the request's seed (the
    same one for every image when ``seed_per_image=False``), or ``None``/``[]`` for a backend
    that cannot be seeded (``seed=False``; one that reports the seeds its service chose may
    give them, one per image)."""
    req, caps = rec.request, rec.capabilities
    if not seeds:
        if caps.seed:
            fail_check(rec, check, f"{where}.seeds to hold one seed per image", repr(seeds),
                       fix=SEED_FIX)  # fmt: skip
        return
    if not isinstance(seeds, list) or len(seeds) != req.num_images:
        fail_check(
            rec,
            check,
            f"{where}.seeds to hold one seed per image ({req.num_images}), or None",
            repr(seeds),
            fix=SEED_FIX,
        )
    if req.seed is not None and seeds[0] != req.seed:
        fail_check(
            rec,
            check,
            f"the first seed to be the request's seed ({req.seed})",
            f"{where}.seeds={seeds}",
            fix=SEED_FIX,
        )
    if not caps.seed_per_image and len(set(seeds)) != 1:
        fail_check(
            rec,
            check,
            "one seed for the whole batch, as Capabilities(seed_per_image=False) says",
            f"{where}.seeds={seeds}",
            fix=SEED_FIX,
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
            fix="finish a valid request with Finished(images, seeds); if the kit's request "
            "cannot run here, pass request fields it can (a served model, an allowed size)",
        )
    if started is not None:
        if (started.width, started.height) != (req.width, req.height):
            fail_check(
                rec,
                check,
                f"Started to announce {req.width}x{req.height}",
                f"{started.width}x{started.height}",
                fix="pass request.width and request.height to Started; a service with fixed "
                "sizes lists them in Capabilities(sizes=[...]) so validation refuses others",
            )
        if started.num_images != req.num_images:
            fail_check(
                rec,
                check,
                f"Started to announce {req.num_images} image(s)",
                f"num_images={started.num_images}",
                fix="pass request.num_images to Started; a service that makes one image per "
                "request declares Capabilities(max_batch=1)",
            )
        expect_seeds(rec, check, "Started", started.seeds)
        if (finished.seeds or None) != (started.seeds or None):
            fail_check(
                rec,
                check,
                f"Finished.seeds to be the seeds Started announced ({started.seeds})",
                f"{finished.seeds}",
                fix="pass the same seeds to Started and Finished",
            )
    images = finished.images
    if not isinstance(images, list) or len(images) != req.num_images:
        count = len(images) if isinstance(images, list) else type(images).__name__
        fail_check(
            rec,
            check,
            f"{req.num_images} final image(s) in a list",
            f"{count}",
            fix="pass Finished a list with one PIL image per requested image "
            "(request.num_images); a service that makes one per request declares "
            "Capabilities(max_batch=1)",
        )
    expect_seeds(rec, check, "Finished", finished.seeds)
    for index, image in enumerate(images):
        if not isinstance(image, PIL.Image.Image):
            fail_check(
                rec,
                check,
                "final images that are PIL images",
                f"image {index}: {type(image).__name__}",
                fix="convert each final image to a PIL image in memory, e.g. "
                "PIL.Image.open(io.BytesIO(data)).convert('RGB') for a service's bytes",
            )
        if image.size != (req.width, req.height):
            fail_check(
                rec,
                check,
                f"final images of the requested {req.width}x{req.height}",
                f"image {index} is {image.width}x{image.height}",
                fix="return images of the requested size (resize the service's output, or "
                "list its fixed sizes in Capabilities(sizes=[...]) so validation refuses others)",
            )
