"""Progress figures for one run: elapsed time, steps per second and the ETA.

``ProgressClock`` measures a run that reports steps. A run that only waits (a remote service
reporting no steps) gets its ETA from the service when it gives one, and otherwise from how long
this process's recent runs of the same backend and model took (``RunDurations``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque


class ProgressClock:
    """Measures a run. The rate is taken over the steps seen so far (from the first step, so
    model loading before step 1 does not skew it)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._first_step: tuple[int, float] | None = None
        self._last_step: tuple[int, float] | None = None
        self._service_eta: tuple[float, float] | None = None

    def step(self, step: int) -> None:
        now = self._clock()
        if self._first_step is None:
            self._first_step = (step, now)
        self._last_step = (step, now)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def restart(self) -> float:
        """Count ``elapsed`` from now (the run leaves a queue and starts running); the seconds
        counted until now."""
        now = self._clock()
        counted, self._start = now - self._start, now
        return counted

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

    def service_said(self, eta: float | None) -> None:
        """The service's own estimate of the seconds left, as of now (None: it gave none)."""
        self._service_eta = None if eta is None else (max(0.0, eta), self._clock())

    def wait_eta(self, expected_duration: float | None) -> float | None:
        """The seconds left for a run that only waits: the service's estimate counted down,
        else a typical run's duration minus the time spent; None when neither is known."""
        if self._service_eta is not None:
            eta, said_at = self._service_eta
            return max(0.0, eta - (self._clock() - said_at))
        if expected_duration is None:
            return None
        return max(0.0, expected_duration - self.elapsed)


class RunDurations:
    """How long this process's recent finished runs took, per backend and model, and how they
    split into a part that does not depend on the number of steps (loading, encoding, decoding,
    saving) and a time per step: a burst of 4-step runs after 20-step ones is expected to take
    4 steps' time plus the same overhead, not 20 steps' time, nor a fifth of it."""

    def __init__(self, keep: int = 5) -> None:
        self.keep = keep
        self._runs: dict[tuple[str, str], deque[tuple[float, int | None, float | None]]] = {}
        self._lock = threading.Lock()

    def record(
        self,
        backend: str,
        model: str | None,
        seconds: float,
        steps: int | None = None,
        step_seconds: float | None = None,
    ) -> None:
        """A finished run: its duration, and where known its steps and seconds per step."""
        with self._lock:
            runs = self._runs.setdefault((backend, model or ""), deque(maxlen=self.keep))
            runs.append((seconds, steps or None, step_seconds or None))

    def expected(self, backend: str, model: str | None, steps: int | None = None) -> float | None:
        """The expected duration of a run of ``steps``: the overhead plus ``steps`` times the
        median time per step, where the runs' steps were timed; else the median duration (each
        scaled to ``steps`` where both counts are known). None before the first run.

        The overhead is the lower median of the runs': a process's first run of a model also
        loads it, and that one slow start must not make every place in the next burst wait
        twice as long as it will (the mean of a cold and a warm run would)."""
        with self._lock:
            runs = list(self._runs.get((backend, model or ""), ()))
        if not runs:
            return None
        timed = [(s, n, t) for s, n, t in runs if n and t]
        if steps and timed:
            overhead = statistics.median_low(max(0.0, s - n * t) for s, n, t in timed)
            return overhead + steps * statistics.median(t for _, _, t in timed)
        return statistics.median(s * steps / n if steps and n else s for s, n, _ in runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()


RUN_DURATIONS = RunDurations()
"""The process-wide record that ``stream`` keeps and reads."""
