"""Waiting in tests on a count or a state, with a wall-clock ceiling only to catch a hang."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition"
) -> None:
    """Wait until ``condition()`` is true (polling every 10 ms); fail after ``timeout`` seconds,
    naming ``what`` was awaited."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def wait_for_runs_to_end(backend: Any, timeout: float = 30.0) -> None:
    """Wait until ``backend.active_runs`` is 0. A stream's end waits only ``STOP_SECONDS`` (1 s)
    for the backend's thread to wind down, and after a cancel or an early finish that thread
    still releases the run's memory, which takes longer on a busy machine."""
    wait_for(lambda: backend.active_runs == 0, timeout, "the backend's run thread to end")
