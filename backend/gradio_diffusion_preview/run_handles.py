"""Run handles: one object per run from the moment it is asked for until it ends, and the one
registry of them that Stop, "Use this preview" and "stop all of my runs" act on.

A ``RunHandle`` has an id, the Gradio session that owns it (if any) and the Gradio event that
started it, its ``RunControl``, its phase (``pending`` until it is admitted, ``waiting`` in its
backend's line, ``running``, ``ended``) and, while it waits, its place in line. Like
``concurrent.futures.Future.cancel()``, ``cancel()`` works in every phase and answers False once
the run has ended: a waiting run leaves its line at once, a running one stops within a step.

The registry answers by id, and with a ``session`` only for that session's own runs: for anyone
else's run id (or one that does not exist) it does nothing and says nothing, so it cannot be used
to stop other people's runs or to probe which runs exist (see ``ownership``).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Literal

from .control import RunControl

if TYPE_CHECKING:
    from .fair_queue import Ticket

RunPhase = Literal["pending", "waiting", "running", "ended"]


class RunHandle:
    """One run: its id, owner, control, phase and place in line (see the module docstring)."""

    def __init__(self, owner: str | None = None, event: str | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.owner = owner
        self.event = event
        """The Gradio event (its ``event_id``) whose handler started the run, if any."""
        self.client: str | None = None
        """The client's network address (``ownership.client_of``), counted by the fair queue."""
        self.control = RunControl()
        self.phase: RunPhase = "pending"
        self.ticket: Ticket | None = None
        self._lock = threading.Lock()

    @property
    def position(self) -> int | None:
        """1-based place in its backend's line while waiting; None in any other phase."""
        ticket = self.ticket
        return ticket.position if self.phase == "waiting" and ticket is not None else None

    def cancel(self) -> bool:
        """Stop the run in whatever phase it is (a waiting run leaves its line at once); False
        when it has already ended."""
        with self._lock:
            if self.phase == "ended":
                return False
            self.control.cancel()
            ticket = self.ticket if self.phase == "waiting" else None
        if ticket is not None:
            ticket.leave()  # wakes the run's wait for its turn
        return True

    def finish_early(self) -> bool:
        """Ask a running run to finish now with its current estimate; False unless running (a
        run that has not started has nothing to keep)."""
        with self._lock:
            if self.phase != "running":
                return False
            self.control.finish_early()
            return True

    def enter(self, phase: RunPhase) -> bool:
        """Move to ``phase``; False when the run was cancelled meanwhile (it must end)."""
        with self._lock:
            if self.phase != "ended":
                self.phase = phase
            return not self.control.cancelled and self.phase == phase

    def __repr__(self) -> str:
        return f"RunHandle({self.id[:8]}, owner={self.owner!r}, phase={self.phase!r})"


class RunRegistry:
    """Every run of this process that has not ended, by id."""

    def __init__(self) -> None:
        self._handles: dict[str, RunHandle] = {}
        self._lock = threading.Lock()

    def open(self, owner: str | None = None, event: str | None = None) -> RunHandle:
        """A new pending run of ``owner``, started by Gradio event ``event``, registered until
        ``close``."""
        handle = RunHandle(owner, event)
        with self._lock:
            self._handles[handle.id] = handle
        return handle

    def close(self, handle: RunHandle) -> None:
        """The run has ended: its signals do nothing from now on, and it leaves the registry."""
        handle.enter("ended")
        with self._lock:
            self._handles.pop(handle.id, None)

    def get(self, run_id: str | None, session: str | None = None) -> RunHandle | None:
        """The run with that id; with ``session``, only if that Gradio session owns it."""
        with self._lock:
            handle = self._handles.get(run_id or "")
        if handle is None or (session is not None and handle.owner != session):
            return None
        return handle

    def of_session(self, session: str) -> list[RunHandle]:
        """The runs that Gradio session owns and that have not ended, in any phase."""
        with self._lock:
            return [handle for handle in self._handles.values() if handle.owner == session]

    def of_event(self, session: str, event: str) -> list[RunHandle]:
        """The runs that Gradio session's event ``event`` started and that have not ended."""
        with self._lock:
            return [h for h in self._handles.values() if (h.owner, h.event) == (session, event)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._handles)

    def ids(self) -> frozenset[str]:
        """The ids of the runs registered now: compare two snapshots to see which runs one piece
        of work added, whatever other runs ended meanwhile."""
        with self._lock:
            return frozenset(self._handles)


RUNS = RunRegistry()
"""The process-wide registry: ``stream``, ``astream`` and ``compare`` register their runs here."""


def cancel_run(run_id: str | None, session: str | None = None) -> bool:
    """Cancel a run by id, waiting or running; False if there is no such run (or, with
    ``session``, it is not that Gradio session's run)."""
    handle = RUNS.get(run_id, session)
    return handle is not None and handle.cancel()


def finish_run(run_id: str | None, session: str | None = None) -> bool:
    """Ask a running run to finish now with its current estimate; False if it is not running
    (or, with ``session``, not that Gradio session's run)."""
    handle = RUNS.get(run_id, session)
    return handle is not None and handle.finish_early()


def runs_of_session(session: str) -> list[str]:
    """The ids of that Gradio session's runs that have not ended (waiting or running)."""
    return [handle.id for handle in RUNS.of_session(session)]


def stop_session_runs(session: str) -> int:
    """Stop every run of that Gradio session, waiting or running: each ends with a
    ``cancelled`` state (the Compare tab's "Stop all"). Returns how many were stopped."""
    return sum(handle.cancel() for handle in RUNS.of_session(session))


def stop_event_runs(session: str, event: str) -> int:
    """Stop every run that Gradio event ``event`` of ``session`` started (what Gradio's cancel
    route is asked to cancel, see ``cancel_guard``). Returns how many were stopped."""
    return sum(handle.cancel() for handle in RUNS.of_event(session, event))
