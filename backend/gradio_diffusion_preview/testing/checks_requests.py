"""The checks that vary the request and see the backend honour it: the same seed twice and the
next seed (``check_seed``), a batch of two (``check_batch``), and a request that passes
validation but cannot run (``check_failure``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image

from ..backend import Backend
from ..request import InvalidRequest, build_request, validate_request
from .checks_events import expect_event_order, expect_failure_well_formed, expect_finished_run
from .defaults import DEFAULT_TIMEOUT, capabilities_for_run, default_fields
from .recording import Recording, fail_check, record_run, run_backend
from .report import ConformanceError, backend_name

NO_SUCH_MODEL = "gdp-conformance/no-such-model"
"""The model the failure check asks for when a backend accepts any model and no
``failing_request`` is given; it must fail as a ``Failed`` event."""


def check_seed(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """The same seed gives the same images again; the next seed gives different ones."""
    if not backend.capabilities.seed:
        return "capabilities.seed is False"
    first = recording or run_backend(backend, timeout=timeout, **fields)
    expect_finished_run(first, "seed")
    request = first.request.model_dump()
    again = record_run(backend, first.request, timeout)
    expect_finished_run(again, "seed")
    other_seed = (request["seed"] + 1) % 2**32
    other = run_backend(backend, timeout=timeout, **{**request, "seed": other_seed})
    expect_finished_run(other, "seed")
    for a, b in zip(first.finished.images, again.finished.images, strict=True):
        difference = largest_pixel_difference(a, b)
        if difference:
            raise ConformanceError(
                first.backend,
                "seed",
                f"seed {request['seed']} to give the same image twice",
                f"images that differ by up to {difference} (of 255) per pixel",
                again.trace(),
                fix="seed every random draw from request.seed (e.g. "
                "torch.Generator().manual_seed(seed)) and pass it to the service; a service "
                "that cannot repeat a seed declares Capabilities(seed=False)",
            )
    if not largest_pixel_difference(first.finished.images[0], other.finished.images[0]):
        raise ConformanceError(
            first.backend,
            "seed",
            f"seeds {request['seed']} and {other_seed} to give different images",
            "identical images: is the seed passed to the generator?",
            other.trace(),
            fix="pass request.seed to the generator or the service; a service that ignores "
            "seeds declares Capabilities(seed=False)",
        )
    return None


def check_batch(
    backend: Backend,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """A batch of two gives two images at the requested size, with a different seed each (one
    seed for both when ``seed_per_image=False``, none when ``seed=False``)."""
    if backend.capabilities.max_batch < 2:
        return "capabilities.max_batch is 1"
    if capabilities_for_run(backend, fields.get("model")).max_batch < 2:
        return "the model's own max_batch is 1"
    rec = run_backend(backend, timeout=timeout, **{**fields, "num_images": 2})
    expect_finished_run(rec, "batch")
    seeds = rec.finished.seeds
    caps = rec.capabilities
    if seeds and caps.seed and caps.seed_per_image and len(set(seeds)) != len(seeds):
        fail_check(
            rec,
            "batch",
            "a different seed for each image",
            f"seeds {seeds}",
            fix="give image i of a batch the seed request.image_seeds()[i]; a service that "
            "takes one seed for the whole batch declares Capabilities(seed_per_image=False), "
            "and one that cannot be seeded Capabilities(seed=False) and Finished(seeds=None)",
        )
    return None


def check_failure(
    backend: Backend,
    *,
    failing_request: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """A request that passes validation but that the backend cannot run ends in one Failed
    event with a message, a known reason and a sound ``retry_after``, not an exception.

    ``failing_request`` holds the fields that make it fail, over the other ``fields`` (for
    example ``{"options": {"style": "no-such-style"}}``). Without it, a backend that accepts any
    model is asked for a model that does not exist; for others the check does not apply.
    """
    if failing_request is None:
        if not backend.capabilities.any_model:
            return (
                "pass failing_request=... (request fields that pass validation but make "
                "generate fail, e.g. a model or a value the service refuses; a backend whose "
                "every valid request runs has none to give)"
            )
        failing_request = {"model": NO_SUCH_MODEL}
    merged = {**fields, **failing_request}
    merged = {**default_fields(backend, merged.get("model")), **merged}
    try:
        request = validate_request(build_request(backend, merged), backend)
    except InvalidRequest as error:
        raise ValueError(
            f"failing_request is rejected by validation before it reaches backend "
            f"'{backend_name(backend)}' ({error}); give fields that pass validation but make "
            "generate fail, e.g. a value the service refuses (typed Options are checked by "
            "validation, so a value outside their choices or range never reaches generate)."
        ) from None
    rec = record_run(backend, request, timeout)
    expect_event_order(rec, "failure", allow_failed=True)
    failed = rec.failed
    if failed is None:
        fail_check(
            rec,
            "failure",
            f"a Failed event for the failing request {failing_request}",
            "Finished" if rec.finished else "no Failed event",
            fix="check what the service refuses (an unknown model, a bad option value) and "
            "yield Failed(message, reason); or pass failing_request=... fields that really "
            "cannot run",
        )
    expect_failure_well_formed(rec, "failure", failed)
    return None


def largest_pixel_difference(a: PIL.Image.Image, b: PIL.Image.Image) -> int:
    """The largest difference between two images in any pixel and channel (0 to 255); 255
    when their sizes differ."""
    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return 255
    return int(np.abs(x - y).max())
