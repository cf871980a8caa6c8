"""Admission: this process's runs on one Serve application, in the order they were sent, so a
waiting run knows its place and a full queue answers ``busy`` the same way every time.

Serve bounds the runs waiting for a replica per caller (``max_queued_requests``), but its
router counts a run as waiting only between two awaits: runs that arrive together on a fresh
handle all pass the check before any is counted (none refused), and on a warm handle a run on
its way to a free replica makes the next one look refused (its own comment in ``router.py``).
So the bound is applied here first, from this process's own count: a run is refused when the
runs it already has at the replicas and in the queue fill every replica slot (replicas times
``max_ongoing_requests``) and ``max_queued_requests`` more. The limits come from the Serve
controller (``Limits``); when it cannot say, Serve's own bound applies alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What the application takes at once: replica slots, the queue bound (-1: none), and the
    ``retry_after`` its backpressure config gives a refused run (None: not set)."""

    slots: int
    max_queued: int
    retry_after: float | None = None


class Admission:
    """The runs of this process on one application: waiting (in order) or at a replica."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[str] = []
        self._running: set[str] = set()

    def enter(self, run_id: str, limits: Limits | None) -> bool:
        """Count the run as waiting, unless the application is full (``False``)."""
        with self._lock:
            if limits is not None and limits.max_queued >= 0:
                held = len(self._waiting) + len(self._running)
                if held >= limits.slots + limits.max_queued:
                    return False
            self._waiting.append(run_id)
            return True

    def place(self, run_id: str) -> tuple[int, int] | None:
        """(1-based place, runs waiting) of a waiting run; None once it is at a replica."""
        with self._lock:
            if run_id not in self._waiting:
                return None
            return self._waiting.index(run_id) + 1, len(self._waiting)

    def at_replica(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._waiting:
                self._waiting.remove(run_id)
                self._running.add(run_id)

    def held(self) -> int:
        """How many of this process's runs wait or are at a replica now."""
        with self._lock:
            return len(self._waiting) + len(self._running)

    def leave(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._waiting:
                self._waiting.remove(run_id)
            self._running.discard(run_id)
