"""FairQueue: runs wait for a backend's slots first come, first served, with a true position.

Gradio's own queue orders events, not backends: one event serving several backends cannot give
each its own concurrency. So ``stream`` (under a ``Policy``) takes a ``Ticket`` here: a run waits
in its backend's line (its position and the line's length shown to the visitor), starts when it is
at the head and a slot is free, and leaves the line or frees its slot however it ends (finished,
failed, cancelled, timed out, the tab closed). A full line, or a session that already has a run,
is refused at once with reason ``busy`` instead of an hour's wait. A session is whatever
session hash a client sends, so the runs are also counted per client (its network address,
``ownership.client_of``): one script opening 20 sessions holds at most ``runs_per_client``.

A ``RunGroup`` lets one request of a session make several runs (a compare of 2 to 4 models): the
group counts as one of the session's ``runs_per_session`` and holds at most ``size`` tickets, so
a visitor never holds more of the server than one such request's worth.
"""

from __future__ import annotations

import heapq
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

from .request import RunRefused

DEFAULT_RUN_SECONDS = 30.0
"""The assumed length of a run before any has finished, for the retry time of a busy answer."""


class Busy(RunRefused):
    """Refused because the server or this session is busy; ``retry_after`` says when to retry."""

    reason = "busy"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Ticket:
    """One run's place in its backend's line; ``leave()`` it when the run ends (idempotent)."""

    def __init__(
        self,
        queue: FairQueue,
        backend: str,
        session: str | None,
        group: RunGroup | None = None,
        client: str | None = None,
    ) -> None:
        self.queue, self.backend, self.session, self.group = queue, backend, session, group
        self.client = client
        self.running = False
        self.left = False
        self.started_at: float | None = None
        self.expected: float | None = None
        """Seconds this run is expected to take (recent runs, scaled to its steps)."""
        self.ran_for: float | None = None
        """Seconds the run itself took, once done (the slot is held a while longer: the final
        images saved and sent, the event closed); the queue learns that tail from it."""

    @property
    def position(self) -> int:
        """1-based place among the runs waiting for this backend; 0 once running."""
        return self.queue._position(self)

    @property
    def waiting(self) -> int:
        """How many runs wait for this backend now."""
        return self.queue._waiting_count(self.backend)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for a slot; True once the run may start, False at
        once when the ticket leaves the line meanwhile (from another thread: a cancel)."""
        return self.queue._admit(self, timeout)

    def leave(self) -> None:
        self.queue._leave(self)


class RunGroup:
    """Several runs of one session request, counted as one of the session's runs; ``close()``
    it when the request ends (idempotent), after its runs' tickets have left."""

    def __init__(
        self, queue: FairQueue, session: str | None, size: int, client: str | None = None
    ) -> None:
        self.queue, self.session, self.size, self.client = queue, session, size, client
        self.tickets = 0
        self.closed = False

    def close(self) -> None:
        self.queue._close_group(self)


class FairQueue:
    """Lines of waiting runs, one per backend, each served by ``slots(backend)`` runs at once."""

    def __init__(
        self,
        slots: Callable[[str], int],
        max_waiting: int = 16,
        runs_per_session: int = 1,
        runs_per_client: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.runs_per_session = runs_per_session
        self.runs_per_client = runs_per_client
        self.clock = clock
        self._cond = threading.Condition()
        self._lines: dict[str, deque[Ticket]] = {}
        self._running: dict[str, int] = {}
        self._started: dict[str, list[Ticket]] = {}
        self._sessions: dict[str, int] = {}
        self._clients: dict[str, int] = {}
        self._tails: dict[str, deque[float]] = {}

    def join(
        self,
        backend: str,
        session: str | None,
        expected_seconds: float | None = None,
        group: RunGroup | None = None,
        client: str | None = None,
    ) -> Ticket:
        """A ticket at the end of ``backend``'s line; raises ``Busy`` when the line is full,
        ``session`` already has ``runs_per_session`` runs waiting or running, or ``client``
        its ``runs_per_client``. A ticket of a ``group`` counts against the group's size
        instead (the group is the session's run)."""
        with self._cond:
            if group is not None:
                if group.closed or group.tickets >= group.size:
                    raise Busy(
                        f"This request may make at most {group.size} runs at once; wait for "
                        "them to end, then try again.",
                    )
            else:
                self._check_session(session, client)
            line = self._lines.setdefault(backend, deque())
            if len(line) >= self.max_waiting:
                raise Busy(*self._busy_answer(backend, len(line), expected_seconds))
            ticket = Ticket(self, backend, session, group, client)
            ticket.expected = expected_seconds
            line.append(ticket)
            if group is not None:
                group.tickets += 1
            else:
                self._count(session, client)
            return ticket

    def _count(self, session: str | None, client: str | None) -> None:
        if session is not None:
            self._sessions[session] = self._sessions.get(session, 0) + 1
        if client is not None:
            self._clients[client] = self._clients.get(client, 0) + 1

    def group(self, session: str | None, size: int, client: str | None = None) -> RunGroup:
        """A group of up to ``size`` runs for one request of ``session``, counted as one of its
        runs; raises ``Busy`` like ``join`` when the session already has its runs going."""
        if size < 1:
            raise ValueError(f"FairQueue.group: size must be at least 1, not {size}.")
        with self._cond:
            self._check_session(session, client)
            self._count(session, client)
            return RunGroup(self, session, size, client)

    def _check_session(self, session: str | None, client: str | None = None) -> None:
        if session is not None and self._sessions.get(session, 0) >= self.runs_per_session:
            raise Busy(
                "You already have a run going; wait for it to finish or stop it, then try again.",
            )
        if (
            client is not None
            and self.runs_per_client is not None
            and self._clients.get(client, 0) >= self.runs_per_client
        ):
            raise Busy(
                f"Your address already has {self.runs_per_client} runs going (all your tabs "
                "and sessions together); wait for one to finish or stop it, then try again.",
            )

    def _release_session(self, session: str | None, client: str | None = None) -> None:
        for key, counts in ((session, self._sessions), (client, self._clients)):
            if key is None:
                continue
            count = counts.get(key, 0) - 1
            if count > 0:
                counts[key] = count
            else:
                counts.pop(key, None)

    def _close_group(self, group: RunGroup) -> None:
        with self._cond:
            if group.closed:
                return
            group.closed = True
            self._release_session(group.session, group.client)
            self._cond.notify_all()

    def _busy_answer(
        self, backend: str, waiting: int, expected_seconds: float | None
    ) -> tuple[str, float]:
        slots = max(1, self.slots(backend))
        per_run = expected_seconds or DEFAULT_RUN_SECONDS
        retry = float(max(1, math.ceil((waiting + slots) / slots * per_run)))
        return (
            f"The server is busy ({waiting} runs are waiting for this model); try again in "
            f"about {retry:.0f} s.",
            retry,
        )

    def active(self, backend: str | None = None) -> tuple[int, int]:
        """(running, waiting) runs, for one backend or all."""
        with self._cond:
            names = [backend] if backend else list(self._lines)
            return (
                sum(self._running.get(name, 0) for name in names),
                sum(len(self._lines.get(name, ())) for name in names),
            )

    def wait_estimate(self, ticket: Ticket, expected_seconds: float | None) -> float | None:
        """Seconds until ``ticket``'s run starts: the runs going now end when their expected
        time is up (counted from their start, so the run ahead of place 1 has only its rest to
        go), then each run ahead takes the slot that frees first for its expected time, each
        plus the recent runs' tail (the slot held after the run itself is done). A run
        whose time is unknown (it joined before any run ended) takes ``expected_seconds``.
        None when no duration is known; 0 once running."""
        if expected_seconds is None:
            return None
        with self._cond:
            if ticket.running or ticket.left:
                return 0.0
            now = self.clock()
            line = self._lines[ticket.backend]
            ahead = list(line)[: line.index(ticket)]
            tails = self._tails.get(ticket.backend)
            tail = statistics.median(tails) if tails else 0.0
            free_at = [
                max(0.0, (t.expected or expected_seconds) + tail - (now - (t.started_at or 0.0)))
                for t in self._started.get(ticket.backend, [])
            ]
            free_at += [0.0] * max(0, self.slots(ticket.backend) - len(free_at))
            heapq.heapify(free_at)
            for other in ahead:  # each run ahead takes the slot that frees first
                took = (other.expected or expected_seconds) + tail
                heapq.heappush(free_at, heapq.heappop(free_at) + took)
            return free_at[0]

    def _position(self, ticket: Ticket) -> int:
        with self._cond:
            if ticket.running or ticket.left:
                return 0
            return self._lines[ticket.backend].index(ticket) + 1

    def _waiting_count(self, backend: str) -> int:
        with self._cond:
            return len(self._lines.get(backend, ()))

    def _admit(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._cond:
            if ticket.running:
                return True
            if ticket.left:
                return False
            line = self._lines[ticket.backend]

            def may_start() -> bool:
                if ticket.left:  # it left the line meanwhile (cancelled): wake up to say so
                    return True
                return line[0] is ticket and self._running.get(ticket.backend, 0) < self.slots(
                    ticket.backend
                )

            if not self._cond.wait_for(may_start, timeout) or ticket.left:
                return False
            line.popleft()
            self._running[ticket.backend] = self._running.get(ticket.backend, 0) + 1
            ticket.running = True
            ticket.started_at = self.clock()
            self._started.setdefault(ticket.backend, []).append(ticket)
            self._cond.notify_all()  # the next in line may start too, if a slot is left
            return True

    def _leave(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.left:
                return
            ticket.left = True
            if ticket.running:
                self._running[ticket.backend] -= 1
                self._started[ticket.backend].remove(ticket)
                if ticket.ran_for is not None and ticket.started_at is not None:
                    held = self.clock() - ticket.started_at
                    tails = self._tails.setdefault(ticket.backend, deque(maxlen=5))
                    tails.append(max(0.0, held - ticket.ran_for))
            else:
                self._lines[ticket.backend].remove(ticket)
            if ticket.group is not None:
                ticket.group.tickets -= 1
            else:
                self._release_session(ticket.session, ticket.client)
            self._cond.notify_all()
