"""ProgressClock: elapsed time, steps per second and ETA for one run, from step timestamps."""

from __future__ import annotations

import time


class ProgressClock:
    """Measures a run. The rate is taken over the steps seen so far (from the first step, so
    model loading before step 1 does not skew it)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._first_step: tuple[int, float] | None = None
        self._last_step: tuple[int, float] | None = None

    def step(self, step: int) -> None:
        now = self._clock()
        if self._first_step is None:
            self._first_step = (step, now)
        self._last_step = (step, now)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def steps_per_second(self) -> float | None:
        if self._first_step is None or self._last_step is None:
            return None
        (s0, t0), (s1, t1) = self._first_step, self._last_step
        if s1 <= s0 or t1 <= t0:
            return None
        return (s1 - s0) / (t1 - t0)

    def eta(self, total_steps: int) -> float | None:
        rate = self.steps_per_second()
        if rate is None or self._last_step is None:
            return None
        return max(0.0, (total_steps - self._last_step[0]) / rate)
