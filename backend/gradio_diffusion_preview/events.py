"""The events a backend's ``generate`` yields, in this fixed order:

``Started`` once; then, as the run goes, ``Step`` for each denoising step (with a preview when the
backend can make one) and ``Status`` while it waits (queued at a service, loading a model, a
remote generation that reports no steps), and ``ImageReady`` for each image of a batch that is
done before the others; then either ``Finished`` with the final images or a single ``Failed``.
A cancelled run simply stops yielding, or, when it passed the cancel on to a service, ends with
one ``Cancelled`` saying whether the service stopped the job. Everything downstream
(coalescing, progress, the component) reads only these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import PIL.Image

PreviewImage = PIL.Image.Image | np.ndarray
"""A preview: a PIL image or an ``HxWx3`` ``uint8`` array (cheaper to hand over from a tensor)."""

Phase = Literal["queued", "loading", "generating", "fetching"]
"""What a waiting run is doing: queued at the service, the service loading the model,
generating (with no steps to report), fetching the result."""
PHASES: tuple[str, ...] = get_args(Phase)

FailureReason = Literal[
    "invalid_request",
    "model_not_found",
    "unauthorized",
    "rate_limited",
    "busy",
    "unavailable",
    "timeout",
    "content_filtered",
    "out_of_memory",
    "remote_error",
    "backend_error",
]
"""Why a run failed, for callers that act on it (retry, ask for a token, pick another model).
See docs/plugins.md for when a backend uses each."""
FAILURE_REASONS: tuple[str, ...] = get_args(FailureReason)


@dataclass(frozen=True)
class Started:
    """The run has begun: how many steps it will take and what it will make.

    ``total_steps`` is ``None`` when the backend cannot say (a service that takes no number of
    steps, ``Capabilities(steps=False)``); ``seeds`` is ``None`` for a backend that has no seed
    (``Capabilities(seed=False)``), so no image claims one."""

    total_steps: int | None
    model: str
    seeds: list[int] | None
    width: int
    height: int
    num_images: int = 1
    preview_size: tuple[int, int] | None = None
    """(width, height) of every preview image this run will send; ``None`` when it sends none.
    With one preview per image of a batch, each of them has this size."""
    job_id: str | None = None
    """The service's own id for this run (a prediction id, a prompt id), when it has one: the
    widget shows it, so a person can find the job at the service. A later ``Status`` may give
    it, when the service names the job only once it is submitted."""
    job_url: str | None = None
    """A link to the job at the service (an ``http://`` or ``https://`` URL only), shown with
    the id."""


@dataclass(frozen=True)
class Step:
    """Denoising step ``step`` (1-based) of ``total_steps`` is done.

    ``preview`` is one image for the whole run (a batch tiled into one, if the backend likes),
    or a list with one image per image of the batch, so each can be shown forming.
    """

    step: int
    total_steps: int
    preview: PreviewImage | Sequence[PreviewImage] | None = None


@dataclass(frozen=True)
class Status:
    """What a run that waits is doing; yield it after ``Started`` as often as it changes.

    Backends that call a service which reports no denoising steps (an HTTP image API, a queue)
    yield these instead of inventing ``Step`` events, and declare ``step_events=False``.
    ``position`` (1-based) and ``queue_size`` are the run's place in the service's queue and
    ``eta`` the service's own estimate of the seconds left, and ``progress`` the fraction of
    the work done (0 to 1, e.g. a service's "40%"), each only when the service says.
    """

    phase: Phase
    message: str = ""
    position: int | None = None
    queue_size: int | None = None
    eta: float | None = None
    progress: float | None = None
    job_id: str | None = None
    """The service's id for the job, as on ``Started``: give it once the service has named it."""
    job_url: str | None = None
    """A link to the job at the service (``http://`` or ``https://`` only), as on ``Started``."""


@dataclass(frozen=True)
class ImageReady:
    """Image ``index`` (0-based) of the batch is final, before the run ends: a service that
    delivers a batch's images one by one (one call per image, output URLs that appear as each
    is done) sends each as it arrives, and the widget shows it at once.

    The rule: ``Finished`` still carries every image of the batch, those sent here included,
    in order (the kit checks each image is sent at most once, of the requested size, and that
    ``Finished`` holds as many). ``seed`` is the image's seed, when the run has seeds (it is
    ``Started.seeds[index]``)."""

    index: int
    image: PIL.Image.Image
    seed: int | None = None


@dataclass(frozen=True)
class Finished:
    """The final images, one per seed, with whatever the backend wants to record about them.
    ``seeds`` is ``None`` (the default) for a backend that has no seed (``Capabilities(
    seed=False)``): the images then claim none."""

    images: list[PIL.Image.Image]
    seeds: list[int] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    early: bool = False
    """True when the run was asked to finish early and these are its current estimate."""


@dataclass(frozen=True)
class Cancelled:
    """The service's answer to a cancel, from a backend that passes the cancel on to a service
    (``Capabilities(cancel_confirms=True)``): the last event of a cancelled run, yielded once
    the service has answered. ``acknowledged`` is True when the service stopped the job, False
    when it refused or could not be reached (the job may still run, and bill); ``detail`` is
    the service's own words, for a person. A backend without it simply stops yielding."""

    acknowledged: bool
    detail: str = ""


@dataclass(frozen=True)
class Failed:
    """The run failed. ``message`` names the problem and the fix, for a person to read;
    ``reason`` says what kind of failure it is, for code; ``retry_after`` (seconds), when
    known, says when trying again may succeed (rate limits, a model loading, a busy queue)."""

    message: str
    reason: FailureReason = "backend_error"
    retry_after: float | None = None


JOB_URL_SCHEMES = ("http", "https")
"""The only schemes a job link may have: the widget shows it as a link a person clicks."""


def is_job_url(url: object) -> bool:
    """Whether ``url`` may be shown as a job's link: an ``http://`` or ``https://`` URL with a
    host (never ``javascript:``, ``file:`` or a relative path)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or any(char.isspace() for char in url):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in JOB_URL_SCHEMES and bool(parts.netloc)


def is_public_job_url(url: object) -> bool:
    """Whether a job link may be shown to a public app's visitors: a job URL (``is_job_url``)
    whose host is a name with a dot or a public IP address. A link to ``localhost``, a bare
    intranet name (``comfyui``) or a loopback, private or link-local address names the server's
    own network, which a visitor can neither reach nor should learn."""
    import ipaddress
    from urllib.parse import urlsplit

    if not is_job_url(url):
        return False
    host = (urlsplit(str(url)).hostname or "").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host and not host.endswith((".localhost", ".local", ".internal"))
    return address.is_global


GenerationEvent = Started | Step | Status | ImageReady | Finished | Failed | Cancelled
