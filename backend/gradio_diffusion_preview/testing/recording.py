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
from ..events import Cancelled, Failed, Finished, GenerationEvent, Started, Status, Step
from ..request import GenerationRequest, InvalidRequest, RunRefused, build_request, validate_request
from .defaults import (
    DEFAULT_CANCEL_AFTER,
    DEFAULT_HANG_CEILING,
    DEFAULT_TIMEOUT,
    HANG_CEILING_STEPS,
    capabilities_for_run,
    default_fields,
)
from .file_writes import watch_writes
from .puller import Puller
from .report import ConformanceError, backend_name, describe_event, validation_message

EXTRA_PULLS = 3
"""Events pulled after a terminal event, to see whether more come."""
SIGNAL_PULLS = 5
"""Events other than Status pulled after a signal before the kit stops pulling a run that goes
on: more than one Step after a signal already breaks the contract, and a few more show how far
the run went. Until then every event the generator yields after the signal is pulled and
counted, up to its return."""
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
    signal_ceiling: float | None = None
    """...and had this many seconds to end before the kit called it a hang (a ceiling, not a
    bound on promptness: that is judged by the events pulled after the signal)."""
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

    @property
    def after_signal(self) -> list[GenerationEvent]:
        """Every event pulled from the generator after the signal was sent (none without one)."""
        return [] if self.signal_index is None else self.events[self.signal_index + 1 :]

    @property
    def reached_last_step(self) -> bool:
        """Whether the run got as far as its last Step: a signal sent to it may have come too
        late to act on (a backend whose generation runs ahead of the kit's pulls)."""
        total = self.started.total_steps if self.started else self.request.steps
        return any(isinstance(s.step, int) and s.step >= (total or 1) for s in self.steps)

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


def fail_check(recording: Recording, check: str, expected: str, seen: str, *, fix: str) -> NoReturn:
    """Raise the ``ConformanceError`` of ``check`` for this run, with its events and ``fix``:
    what the plugin's author changes (every failure of the kit says it)."""
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
    arrived (right after Started when ``signal_after`` is 0); every event the generator yields
    after it is pulled and recorded until it returns, or until ``signal_timeout`` seconds have
    passed, a ceiling that catches a hang (by default ``hang_ceiling``: 30 s, or ten of the
    run's step times if longer). With ``watch_files`` the files that the run's threads open
    for writing are recorded (see ``file_writes``)."""
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
    after_signal = 0  # events other than Status pulled after the signal
    with watch_writes(rec.writes, watch_files):
        t0 = time.monotonic()
        puller = Puller(lambda: backend.generate(request, control), rec.backend)
        extra = None  # events still to pull after a terminal event
        try:
            while True:
                wait = timeout - (time.monotonic() - t0)
                if rec.signal_ceiling is not None:  # a run told to stop: only a hang ends it
                    wait = min(wait, rec.signal_time + rec.signal_ceiling - (time.monotonic() - t0))
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
                after_signal += rec.signal is not None and not isinstance(item, Status)
                if extra is not None:
                    extra -= 1
                elif isinstance(item, Finished | Failed | Cancelled):
                    extra = EXTRA_PULLS
                elif signal and rec.signal is None and signal_point(item, signal_after):
                    if signal == "cancel":
                        control.cancel()
                    else:
                        control.finish_early()
                    rec.signal, rec.signal_index = signal, len(rec.events) - 1
                    rec.signal_time = time.monotonic() - t0
                    rec.signal_ceiling = (
                        signal_timeout if signal_timeout is not None else hang_ceiling(rec)
                    )
                if (
                    extra == 0
                    or counted >= limit
                    or len(rec.events) >= MAX_EVENTS
                    or after_signal >= SIGNAL_PULLS
                ):
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


def hang_ceiling(*recordings: Recording) -> float:
    """Seconds a run told to stop may take to end before it counts as a hang:
    ``DEFAULT_HANG_CEILING``, or ``HANG_CEILING_STEPS`` of the slowest step seen in
    ``recordings`` if that is longer (a backend that stops between steps cannot stop sooner)."""
    slowest = 0.0
    for rec in recordings:
        times = [
            t for e, t in zip(rec.events, rec.times, strict=False) if isinstance(e, Step | Started)
        ]
        slowest = max([slowest, *(b - a for a, b in zip(times, times[1:], strict=False))])
    return max(DEFAULT_HANG_CEILING, HANG_CEILING_STEPS * slowest)
