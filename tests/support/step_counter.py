"""Counts a diffusers backend's denoising iterations through its step-listener hook, to judge
cancel and finish early by steps, never by time."""

from __future__ import annotations

import threading


class StepCounter:
    """``with StepCounter(backend) as counter:`` counts iterations while it is open; call
    ``counter.mark()`` right after giving a signal (cancel, finish early): ``after_signal`` is
    how many iterations ended after it (at most the one in flight, for a backend that stops
    within a step). Marked before the signal, an iteration ending in between would count too."""

    def __init__(self, backend) -> None:
        self.backend, self.count = backend, 0
        self.at_signal: int | None = None

    def __call__(self, iteration: int, total: int) -> None:
        self.count += 1

    def __enter__(self) -> StepCounter:
        self.backend.step_listeners.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.backend.step_listeners.remove(self)

    def mark(self) -> None:
        self.at_signal = self.count

    @property
    def after_signal(self) -> int:
        assert self.at_signal is not None, "mark() right after giving the signal"
        return self.count - self.at_signal


class StepHold:
    """``with StepHold(backend, at=2) as hold:`` holds a diffusers backend's run at the end of
    iteration ``at`` until ``hold.release()``: a test that must act while a run is still going
    (press Stop) holds it there instead of hoping the run is slow enough. The wait is bounded
    (``ceiling`` seconds) only so that a broken test cannot hang the suite."""

    def __init__(self, backend, at: int = 2, ceiling: float = 120.0) -> None:
        self.backend, self.at, self.ceiling = backend, at, ceiling
        self.reached = threading.Event()
        self._released = threading.Event()

    def __call__(self, iteration: int, total: int) -> None:
        if iteration >= self.at:
            self.reached.set()  # the run got there (held, or let through once released)
            if not self._released.is_set():
                self._released.wait(self.ceiling)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> StepHold:
        self.backend.step_listeners.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.backend.step_listeners.remove(self)
