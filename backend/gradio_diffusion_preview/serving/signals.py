"""RunSignals: carries "finish early" from a caller to the replica running its run.

Stop needs no help: cancelling the Serve call reaches the replica's generator. "Use this
preview" must reach the same replica while the run goes on, and Serve routes every call to
whichever replica it likes; its ``broadcast`` waits behind a replica's running requests when
``max_ongoing_requests`` is reached (one run per GPU), which is exactly when it is needed. So
the caller owns one small asyncio actor per process; each replica waits on it for its run's id
(one long-poll, no polling) and the caller's ``finish`` wakes that wait at once.

An async actor runs its calls in no fixed order, even one caller's: a run that ends at once
(refused, failed, cancelled at its start) can have its ``forget`` run before its ``wait``, and
the caller's ``finish`` (sent from its watch thread) can come after both ``forget`` calls. So
``forget`` is final: the actor remembers the ids of ended runs (the latest ``ENDED_KEPT``) and
answers a later ``wait`` at once and drops a later ``finish``; neither is kept for ever.
"""

from __future__ import annotations

import asyncio

ENDED_KEPT = 10_000
"""How many ended runs' ids are remembered (about 1 MB); far more than end while one call
of the same run can still be on its way."""


class RunSignals:
    """An async Ray actor: ``wait(run_id)`` returns True once ``finish(run_id)`` is called,
    False once ``forget(run_id)`` is (the run ended), in whichever order the calls run."""

    def __init__(self) -> None:
        self._waits: dict[str, asyncio.Event] = {}
        self._finish: set[str] = set()
        self._ended: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first

    def _event(self, run_id: str) -> asyncio.Event:
        return self._waits.setdefault(run_id, asyncio.Event())

    async def wait(self, run_id: str) -> bool:
        if run_id in self._ended:
            return False
        if run_id not in self._finish:
            await self._event(run_id).wait()
        finished = run_id in self._finish
        self._waits.pop(run_id, None)
        self._finish.discard(run_id)
        return finished

    async def finish(self, run_id: str) -> None:
        if run_id in self._ended:
            return
        self._finish.add(run_id)
        self._event(run_id).set()

    async def forget(self, run_id: str) -> None:
        self._finish.discard(run_id)
        event = self._waits.pop(run_id, None)
        if event is not None:
            event.set()
        self._ended.pop(run_id, None)
        self._ended[run_id] = None
        while len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]

    async def pending(self) -> int:
        """How many runs are waited on or marked (for tests: nothing must leak)."""
        return len(self._waits) + len(self._finish)
