"""Stopping a job we no longer want, without ever stopping someone else's.

The server has no per-task stop: ``POST /sdapi/v1/interrupt`` sets ``state.interrupted`` for
whatever job runs *now*, which may be another client's, and ``state.begin()`` clears the flag
when the next job starts, so an interrupt sent while our job still waits in the queue is lost
and would stop the job ahead of us instead. Closing our txt2img connection does not help either:
the server runs the job anyway.

So a run that is cancelled, times out or loses its connection hands its task id to the
``Reaper``, which asks ``/internal/progress`` about that task until it is ``active`` (the
server's current task, set right after ``state.begin()``), then interrupts it; the job stops
within a sampling step. It forgets the task once it has completed, once our txt2img call has
returned (the job is over), after several failed polls in a row (the server is gone), or after
the time given. One thread serves every abandoned task of a backend and exits when none is left.

The interrupt reaches the server some time after the poll that saw our task active: two network
trips plus however long this process takes to send it (tens of milliseconds on a busy server).
Had our job ended and the next begun in between, the interrupt would stop that one. So
``interrupt_if_running`` interrupts only while our job has clearly longer to run than that
window (``safety_margin``): at its start (no progress yet), or when both the server's ETA and the
rate seen by the run put its end further away. A job closer to its end is left to finish, which
costs at most that margin of the server's time. What remains: a server whose txt2img raised keeps
the failed task as "current" until the next job starts, which a reaper whose own txt2img call had
already given up cannot tell apart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..remote_failure import RemoteFailure

if TYPE_CHECKING:
    from .client import A1111Client

log = logging.getLogger(__name__)

MAX_POLL_ERRORS = 5
"""Failed polls in a row after which a task is given up (the server is gone or broken)."""
PATIENCE = 600.0
"""Seconds at least that an abandoned task is watched: it may wait that long behind others."""
SLOW_AFTER, SLOW_INTERVAL = 10.0, 1.0
"""A task watched longer than ``SLOW_AFTER`` seconds is polled every ``SLOW_INTERVAL``."""
MIN_MARGIN = 0.25
"""The least time, in seconds, our job must still have to run for an interrupt to be sent."""

Outcome = Literal["interrupted", "ending", "waiting", "completed"]


def safety_margin(round_trip: float) -> float:
    """How much longer our job must run for an interrupt sent now to reach it in time: the
    round trip of the poll that saw it running, four times over, and at least ``MIN_MARGIN``."""
    return max(MIN_MARGIN, 4 * round_trip)


def interrupt_if_running(client: A1111Client, task_id: str, rate: float | None = None) -> Outcome:
    """Interrupt the server's job if it is ours and will still be running when the interrupt
    arrives. ``rate`` is our job's progress per second as the run saw it, when it did.

    Returns "interrupted"; "ending" (ours, but too close to its end to stop safely: it is left
    to finish); "waiting" (queued, or not at the server yet); or "completed"."""
    started = time.monotonic()
    report = client.progress(task_id, live_preview=False)
    round_trip = time.monotonic() - started
    if report.completed and not report.active:
        return "completed"
    if not report.active:
        return "waiting"
    progress = report.progress or 0.0
    if progress > 0:  # at 0 the job has just begun: all of it is still ahead
        left = [report.eta if report.eta is not None else 0.0]
        if rate:
            left.append((1.0 - progress) / rate)
        if min(left) <= safety_margin(round_trip):
            return "ending"
    client.interrupt()
    return "interrupted"


@dataclass
class _Abandoned:
    task_id: str
    call_over: threading.Event
    until: float
    rate: float | None = None
    since: float = 0.0
    next_poll: float = 0.0
    errors: int = 0


class Reaper:
    """Interrupts abandoned tasks of one server once, and only once, each is running."""

    def __init__(self, client: A1111Client, poll_interval: float) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self._tasks: dict[str, _Abandoned] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.interrupted: list[str] = []
        """Task ids this reaper interrupted, oldest first (the last 64), for tests and logs."""

    def abandon(
        self, task_id: str, call_over: threading.Event, seconds: float, rate: float | None = None
    ) -> None:
        """Stop ``task_id`` when it runs; ``call_over`` is set when our txt2img call returned
        (then the job is over and nothing needs stopping). Gives up after ``seconds``, or
        ``PATIENCE`` if longer.
        ``rate`` is the job's progress per second, if the run saw it running."""
        if call_over.is_set():
            return
        with self._lock:
            now = time.monotonic()
            until = now + max(seconds, PATIENCE)
            self._tasks[task_id] = _Abandoned(task_id, call_over, until, rate, since=now)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop,
                    name=f"gdp-a1111-reaper-{self.client.endpoint.id}",
                    daemon=True,
                )
                self._thread.start()

    @property
    def watching(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    def _loop(self) -> None:
        while True:
            with self._lock:
                tasks = list(self._tasks.values())
                if not tasks:
                    self._thread = None
                    return
            for task in tasks:
                if self._settled(task):
                    with self._lock:
                        self._tasks.pop(task.task_id, None)
            time.sleep(self.poll_interval)

    def _settled(self, task: _Abandoned) -> bool:
        """Look at one task; True when nothing more is to be done for it."""
        now = time.monotonic()
        if task.call_over.is_set() or now > task.until:
            return True
        if now < task.next_poll:
            return False
        if now - task.since > SLOW_AFTER:
            task.next_poll = now + SLOW_INTERVAL
        try:
            outcome = interrupt_if_running(self.client, task.task_id, task.rate)
        except RemoteFailure as failure:
            task.errors += 1
            log.debug("reaper poll of %s failed: %s", task.task_id, failure)
            return task.errors >= MAX_POLL_ERRORS
        task.errors = 0
        if outcome == "interrupted":
            self.interrupted = [*self.interrupted[-63:], task.task_id]
            log.info("interrupted abandoned task %s on %s", task.task_id, self.client.where)
        return outcome != "waiting"
