"""RunSignals: Stop and "finish early" of runs whose backend works in a forked ZeroGPU worker.

``@spaces.GPU`` runs its function in a worker process forked from the app's process and hands
it only pickled arguments, so the run's ``RunControl`` (thread events) cannot cross. Instead
every run takes a slot of one block of shared memory, made in the app's process before any
worker is forked (workers inherit it, and keep seeing the app's writes however long they are
reused). The app writes a run's signals into its slot as they are sent (``RunControl.watch``),
and the worker's ``SlotControl`` reads them wherever the backend checks ``cancelled`` or
``finish_requested``, so a signal reaches the backend at its next step, as in a local run.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

from ..control import RunControl

CAPACITY = 256
"""Runs that can hold a slot at once (ZeroGPU grants far fewer GPUs than this)."""
CANCEL, FINISH = 1, 2
POLL_SECONDS = 0.01
"""How often ``SlotControl.wait_cancelled`` looks at its slot while it sleeps."""


class SlotsExhausted(RuntimeError):
    """Every slot is taken: more runs at once than ``CAPACITY``."""


class RunSignals:
    """The shared block of slots; ``take`` and ``give_back`` are called in the app's process."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._flags: Any = multiprocessing.get_context("fork").RawArray("b", capacity)
        self._free = list(range(capacity - 1, -1, -1))
        self._lock = threading.Lock()

    def take(self) -> int:
        """A free slot, cleared. Raises ``SlotsExhausted`` when none is free."""
        with self._lock:
            if not self._free:
                raise SlotsExhausted(f"more than {len(self._flags)} ZeroGPU runs at once")
            slot = self._free.pop()
        self._flags[slot] = 0
        return slot

    def give_back(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)

    def send(self, slot: int, control: RunControl) -> None:
        """Copy ``control``'s signals into ``slot``."""
        self._flags[slot] = (CANCEL if control.cancelled else 0) | (
            FINISH if control.finish_requested else 0
        )

    def read(self, slot: int) -> int:
        return self._flags[slot]


class SlotControl(RunControl):
    """A ``RunControl`` in the worker whose signals are the app's writes to one slot (plus any
    set here, e.g. when the worker's generator is closed)."""

    def __init__(self, signals: RunSignals, slot: int) -> None:
        super().__init__()
        self._signals, self._slot = signals, slot

    @property
    def cancelled(self) -> bool:
        return super().cancelled or bool(self._signals.read(self._slot) & CANCEL)

    @property
    def finish_requested(self) -> bool:
        return super().finish_requested or bool(self._signals.read(self._slot) & FINISH)

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.cancelled:
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_SECONDS, left))
        return True


_SIGNALS: RunSignals | None = None
_SIGNALS_LOCK = threading.Lock()


def run_signals() -> RunSignals:
    """The process's block of slots, made on first use (at startup, by ``on_zerogpu``)."""
    global _SIGNALS
    with _SIGNALS_LOCK:
        if _SIGNALS is None:
            _SIGNALS = RunSignals()
        return _SIGNALS
