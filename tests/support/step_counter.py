"""Counts a diffusers backend's denoising iterations through its step-listener hook, to judge
cancel and finish early by steps, never by time."""

from __future__ import annotations


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
