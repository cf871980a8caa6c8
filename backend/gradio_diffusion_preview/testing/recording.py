"""Running a backend for real and recording what it yields: the ``Recording`` that every check
reads, and ``run_backend`` that makes one.

A run goes through ``generate`` on a worker thread with a time limit, as the server runs it,
and can be sent ``cancel()`` or ``finish_early()`` part-way, so the checks judge what a user
of the component would see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..backend import Backend, Capabilities
from ..control import RunControl
from ..events import Failed, Finished, GenerationEvent, Started, Status, Step
from ..request import GenerationRequest, InvalidRequest, RunRefused, build_request, validate_request
from .defaults import DEFAULT_CANCEL_AFTER, DEFAULT_TIMEOUT, capabilities_for_run, default_fields
from .file_writes import watch_writes
from .puller import Puller
from .report import ConformanceError, backend_name, describe_event, validation_message

EXTRA_PULLS = 3
"""Events pulled after a terminal event or a signal, to see whether more come."""
MAX_EVENTS = 5000
"""Events of any kind recorded before a run is judged a runaway; other limits count no Status
events, as a backend polling a service may send many."""


@dataclass
class Recording:
    """One run of ``backend.generate`` as the kit saw it."""

    backend: str
    request: GenerationRequest
    capabilities: Capabilities
    """The capabilities that hold for the request's model."""
    events: list[GenerationEvent] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    """Seconds from the call to ``generate`` to each event."""
    error: BaseException | None = None
    """What ``generate`` raised, if it raised."""
    ended: bool = False
    """True when the generator returned by itself."""
    timed_out: bool = False
    signal: str | None = None
    """"cancel" or "finish_early" when the run was sent that signal..."""
    signal_index: int | None = None
    """...after the event at this index (a Step, or Started when sent right after it)..."""
    signal_time: float | None = None
    """...at this time (seconds from the call)..."""
    signal_limit: float | None = None
    """...and had this many seconds to take effect."""
    end_time: float | None = None
    """When the generator returned, raised or was given up on (seconds from the call)."""
    watched: bool = False
    writes: list[str] = field(default_factory=list)
    """Files opened for writing during the run, when it was ``watched``."""

    @property
    def started(self) -> Started | None:
        return next((e for e in self.events if isinstance(e, Started)), None)

    @property
    def steps(self) -> list[Step]:
        return [e for e in self.events if isinstance(e, Step)]

    @property
    def statuses(self) -> list[Status]:
        return [e for e in self.events if isinstance(e, Status)]

    @property
    def finished(self) -> Finished | None:
        return next((e for e in self.events if isinstance(e, Finished)), None)

    @property
    def failed(self) -> Failed | None:
        return next((e for e in self.events if isinstance(e, Failed)), None)

    def trace(self) -> str:
        """The events, one short phrase each (long runs are elided in the middle)."""
        words = [describe_event(event) for event in self.events]
        if self.signal_index is not None:
            words.insert(self.signal_index + 1, f"<{self.signal}()>")
        if self.error is not None:
            words.append(f"raised {type(self.error).__name__}: {self.error}")
        elif self.timed_out:
            words.append("<no event within the time limit>")
        elif self.ended:
            words.append("<returned>")
        if len(words) > 12:
            words = [*words[:6], f"... {len(words) - 10} more ...", *words[-4:]]
        return ", ".join(words) or "<nothing>"


def fail_check(
    recording: Recording, check: str, expected: str, seen: str, fix: str | None = None
) -> NoReturn:
    """Raise the ``ConformanceError`` of ``check`` for this run, with its events."""
    raise ConformanceError(recording.backend, check, expected, seen, recording.trace(), fix=fix)


def run_backend(
    backend: Backend,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    signal: str | None = None,
    signal_after: int = DEFAULT_CANCEL_AFTER,
    signal_timeout: float | None = None,
    watch_files: bool = False,
    **fields: Any,
) -> Recording:
    """Validate the request made of ``fields`` (over ``default_fields``) and run it, recording
    every event. ``signal`` ("cancel" or "finish_early") is sent once Step ``signal_after`` has
    arrived (right after Started when ``signal_after`` is 0); the run then has
    ``signal_timeout`` seconds (by default about three step times, at least one second) to
    end. With ``watch_files`` the files opened for writing are recorded."""
    return record_run(
        backend,
        resolve_request(backend, fields),
        timeout,
        signal,
        signal_after,
        signal_timeout,
        watch_files,
    )


def resolve_request(backend: Backend, fields: dict[str, Any]) -> GenerationRequest:
    """The validated request made of ``fields`` over ``default_fields`` (for the model asked
    for); a request the backend rejects, or a backend that cannot run now, is reported as a
    failure of the "request" check."""
    merged = {**default_fields(backend, fields.get("model")), **fields}
    try:
        return validate_request(build_request(backend, merged), backend)
    except InvalidRequest as error:
        expected, fix = (
            "the kit's request to pass validation",
            "pass request fields this backend accepts, e.g. prompt=..., steps=..., width=..., "
            "height=...",
        )
        seen = str(error)
    except RunRefused as error:
        expected, fix = (
            "the backend to be usable for the kit's runs",
            "configure the backend in the test (a token, a server started by a fixture) so "
            "that availability() is usable and models() lists its models",
        )
        seen = f"{error.reason}: {error}"
    except ValueError as error:  # a model's defaults that do not fit the capabilities
        expected, fix = (
            "capabilities_for(model) to apply the model's defaults",
            "make the model's ModelDefaults fit within the backend's capabilities "
            "(a steps_range needs a default_steps inside it, and so on)",
        )
        seen = validation_message(error)
    raise ConformanceError(backend_name(backend), "request", expected, seen, fix=fix)


def record_run(
    backend: Backend,
    request: GenerationRequest,
    timeout: float,
    signal: str | None = None,
    signal_after: int = DEFAULT_CANCEL_AFTER,
    signal_timeout: float | None = None,
    watch_files: bool = False,
) -> Recording:
    """Run an already validated ``request``; the arguments are those of ``run_backend``."""
    control = RunControl()
    rec = Recording(
        backend_name(backend),
        request,
        capabilities_for_run(backend, request.model),
        watched=watch_files,
    )
    limit = max(4 * (request.steps or 1) + 10, 20)  # events: enough to see a runaway backend
    counted = 0  # events other than Status (a backend polling a service may send many)
    with watch_writes(rec.writes, watch_files):
        t0 = time.monotonic()
        puller = Puller(lambda: backend.generate(request, control), rec.backend)
        extra = None  # events still to pull after a terminal event or a signal
        try:
            while True:
                wait = timeout - (time.monotonic() - t0)
                if rec.signal_limit is not None:  # a run told to stop gets less patience
                    wait = min(
                        wait, rec.signal_time + 2 * rec.signal_limit + 1.0 - (time.monotonic() - t0)
                    )
                kind, item = puller.next(wait)
                now = time.monotonic() - t0
                if kind == "timeout":
                    rec.timed_out, rec.end_time = True, now
                    control.cancel()
                    break
                if kind in ("end", "raised"):
                    rec.ended, rec.error, rec.end_time = kind == "end", item, now
                    break
                rec.events.append(item)
                rec.times.append(now)
                counted += not isinstance(item, Status)
                if extra is not None:
                    extra -= 1
                elif isinstance(item, Finished | Failed):
                    extra = EXTRA_PULLS
                elif signal and rec.signal is None and signal_point(item, signal_after):
                    if signal == "cancel":
                        control.cancel()
                    else:
                        control.finish_early()
                    rec.signal, rec.signal_index = signal, len(rec.events) - 1
                    rec.signal_time = time.monotonic() - t0
                    rec.signal_limit = (
                        signal_timeout if signal_timeout is not None else step_time_limit(rec)
                    )
                    extra = EXTRA_PULLS + 1
                if extra == 0 or counted >= limit or len(rec.events) >= MAX_EVENTS:
                    rec.end_time = now
                    break
        finally:
            puller.close(wait=0.0 if rec.timed_out else 2.0)
    return rec


def signal_point(event: Any, after: int) -> bool:
    """Whether a signal meant for "after Step ``after``" (0: right after Started) is due."""
    if after <= 0:
        return isinstance(event, Started)
    return isinstance(event, Step) and isinstance(event.step, int) and event.step >= after


def step_time_limit(rec: Recording) -> float:
    """About three step times (the slowest seen so far), at least one second."""
    times = [
        t for e, t in zip(rec.events, rec.times, strict=False) if isinstance(e, Step | Started)
    ]
    intervals = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(1.0, 3 * max(intervals, default=0.0))
