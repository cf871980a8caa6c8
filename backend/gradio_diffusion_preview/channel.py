"""EventChannel: hands events from a generation thread to a consumer without ever blocking the
producer. Milestones (started, finished, failed) are kept in order; consecutive step events are
coalesced, the latest wins, and steps are released no faster than a minimum interval."""

from __future__ import annotations

import threading
import time
from collections import deque

from .events import GenerationEvent, Step


class EventChannel:
    """A latest-wins hand-off between one producer thread and one consumer."""

    def __init__(self, min_interval: float = 0.0) -> None:
        self.min_interval = min_interval
        self.dropped_steps = 0
        self._queue: deque[GenerationEvent] = deque()
        self._closed = False
        self._cond = threading.Condition()
        self._last_step_release = float("-inf")

    def put(self, event: GenerationEvent) -> None:
        """Add an event; a step replaces a step still waiting at the tail. Never blocks long."""
        with self._cond:
            if isinstance(event, Step) and self._queue and isinstance(self._queue[-1], Step):
                self._queue[-1] = event
                self.dropped_steps += 1
            else:
                self._queue.append(event)
            self._cond.notify()

    @property
    def closed(self) -> bool:
        """True once the producer has closed the channel (events may still be waiting)."""
        return self._closed

    def close(self) -> None:
        """The producer is done; ``get`` returns ``None`` once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def get(self, timeout: float | None = None) -> GenerationEvent | None:
        """The next event, or ``None`` when closed and drained or when ``timeout`` runs out.

        A step that is the only event waiting is held until ``min_interval`` has passed since
        the last released step; a later step arriving meanwhile replaces it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self._queue:
                    head = self._queue[0]
                    hold_until = self._last_step_release + self.min_interval
                    lone_step = isinstance(head, Step) and len(self._queue) == 1
                    if not lone_step or now >= hold_until or self._closed:
                        self._queue.popleft()
                        if isinstance(head, Step):
                            self._last_step_release = now
                        return head
                    wake = hold_until
                elif self._closed:
                    return None
                else:
                    wake = None
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wake = deadline if wake is None else min(wake, deadline)
                self._cond.wait(None if wake is None else max(0.0, wake - now))
