"""The status check: the Status events a run sends while it waits (queued at a service, a model
loading, a remote generation that reports no steps) are well formed, so the component can show
them: a known phase, a queue place and size that make sense, an ETA in seconds, a text."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..backend import Backend
from ..events import PHASES, Status
from .checks_events import expect_event_order
from .defaults import DEFAULT_TIMEOUT
from .recording import Recording, fail_check, run_backend

CHECK = "status"


def check_status(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Every Status comes after Started and before the end, with ``phase`` one of
    ``events.PHASES``, ``message`` a str, ``position`` an int >= 1, ``queue_size`` an int >= 0
    and not below ``position``, ``eta`` a finite number of seconds >= 0, ``progress`` a
    fraction done from 0 to 1 (each of the last four may be None). A run may send no Status at
    all."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    expect_event_order(rec, CHECK, allow_failed=True)
    for index, status in enumerate(rec.statuses, start=1):
        problem = status_problem(status)
        if problem:
            fail_check(
                rec, CHECK, problem.expected, f"Status #{index}: {problem.seen}", fix=problem.fix
            )


class StatusProblem(NamedTuple):
    """What is wrong with one Status: what the kit expected, what it saw, what to change."""

    expected: str
    seen: str
    fix: str


def status_problem(status: Status) -> StatusProblem | None:
    """What is wrong with one Status; None when it is well formed."""
    if status.phase not in PHASES:
        return StatusProblem(
            f"Status.phase to be one of {', '.join(PHASES)}",
            f"phase={status.phase!r}",
            fix="pick the phase that says what the run waits for: queued, loading, generating or "
            "fetching (see Status in docs/plugins.md); say anything more in its message",
        )
    if not isinstance(status.message, str):
        return StatusProblem(
            "Status.message to be a str ('' for the phase's own text)",
            f"message={status.message!r}",
            fix="pass a str for a person, e.g. the service's own words, or ''",
        )
    position, size, eta = status.position, status.queue_size, status.eta
    if position is not None and (not is_int(position) or position < 1):
        return StatusProblem(
            "Status.position to be None or an int >= 1 (1 = next)",
            f"position={position!r}",
            fix="count the place in line from 1 (add 1 to a service's 0-based index), or pass "
            "None when the service does not say",
        )
    if size is not None and (not is_int(size) or size < 0):
        return StatusProblem(
            "Status.queue_size to be None or an int >= 0",
            f"queue_size={size!r}",
            fix="pass the number of jobs in the service's queue as an int, or None",
        )
    if position is not None and size is not None and size < position:
        return StatusProblem(
            "Status.queue_size to be at least Status.position (the run is in the queue)",
            f"position={position}, queue_size={size}",
            fix="count the run itself in queue_size (a service's count of jobs ahead of it "
            "is position - 1)",
        )
    if eta is not None and (
        isinstance(eta, bool)
        or not isinstance(eta, int | float)
        or not math.isfinite(eta)
        or eta < 0
    ):
        return StatusProblem(
            "Status.eta to be None or a finite number of seconds >= 0",
            f"eta={eta!r}",
            fix="pass the seconds left as a float (max(0.0, estimate)), or None when the "
            "service gives no estimate",
        )
    progress = status.progress
    if progress is not None and (
        isinstance(progress, bool)
        or not isinstance(progress, int | float)
        or not math.isfinite(progress)
        or not 0 <= progress <= 1
    ):
        return StatusProblem(
            "Status.progress to be None or a fraction done from 0 to 1",
            f"progress={progress!r}",
            fix="divide a service's percentage by 100 (40% is progress=0.4), or pass None when "
            "it does not say how far along it is",
        )
    return None


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` is an int to Python, not a queue position)."""
    return isinstance(value, int) and not isinstance(value, bool)
