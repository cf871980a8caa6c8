"""Counts a diffusers backend's denoising iterations through its step-listener hook, to judge
cancel and finish early by steps, never by time."""

from __future__ import annotations

import queue
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


class StepHolds:
    """``with StepHolds(backend, at=(2, 20)) as holds:`` holds each run of a diffusers backend
    at the end of each iteration in ``at``, in the order the runs get there: ``holds.next()``
    waits until a run is held, ``holds.release()`` lets it go on. A test that must see a page
    paint two of a run's previews holds the run at two steps until each is painted, instead of
    hoping the page keeps up (latest wins: a busy page may paint only the newest of several).
    The waits are bounded (``ceiling`` seconds) only so that a broken test cannot hang."""

    def __init__(self, backend, at: tuple[int, ...], ceiling: float = 120.0) -> None:
        self.backend, self.at, self.ceiling = backend, set(at), ceiling
        self._held: queue.Queue[threading.Event] = queue.Queue()
        self._current: threading.Event | None = None
        self._closed = threading.Event()

    def __call__(self, iteration: int, total: int) -> None:
        if iteration in self.at and not self._closed.is_set():
            released = threading.Event()
            self._held.put(released)
            released.wait(self.ceiling)

    def next(self) -> None:
        """Wait until the next run is held."""
        try:
            self._current = self._held.get(timeout=self.ceiling)
        except queue.Empty:
            raise AssertionError(f"no run reached a hold in {self.ceiling:g} s") from None

    def release(self) -> None:
        """Let the run that ``next()`` found held go on."""
        assert self._current is not None, "next() first"
        self._current.set()

    def __enter__(self) -> StepHolds:
        self.backend.step_listeners.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        if self._current is not None:
            self._current.set()
        while not self._held.empty():
            self._held.get().set()
        self.backend.step_listeners.remove(self)
