"""RunWatch: passes a run's signals on to Ray Serve while the caller's thread waits for events.

The thread that reads the Serve stream blocks until the replica's next event, which may be a
while (a queued run, a model loading), so a second, light thread watches the run's
``RunControl`` and the deadline: Stop cancels the Serve call (the replica's generator is
cancelled and its backend stops within one step; a queued call is dropped before it reaches a
replica), "finish early" is sent through the ``RunSignals`` actor, and a run past its deadline
is cancelled and marked ``timed_out``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ...control import RunControl

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.02
"""How often the watch looks at the run's control (a fraction of any denoising step)."""


class RunWatch:
    def __init__(
        self,
        response: Any,
        control: RunControl,
        deadline: float,
        signals: Any = None,
        run_id: str = "",
    ) -> None:
        self.response, self.control, self.deadline = response, control, deadline
        self.signals, self.run_id = signals, run_id
        self.timed_out = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gdp-ray-watch", daemon=True)

    def start(self) -> RunWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """The run is over: stop watching (returns at once)."""
        self._done.set()

    def _watch(self) -> None:
        finish_sent = False
        while not self._done.wait(WATCH_SECONDS):
            if self.control.cancelled:
                self.cancel()
                return
            if time.monotonic() >= self.deadline:
                self.timed_out = True
                self.cancel()
                return
            if not finish_sent and self.signals is not None and self.control.finish_requested:
                finish_sent = True
                try:
                    self.signals.finish.remote(self.run_id)
                except Exception:
                    log.warning("could not ask run %s to finish early", self.run_id, exc_info=True)

    def cancel(self) -> None:
        """Cancel the Serve call; quiet if it already ended or never got a replica."""
        try:
            self.response.cancel()
        except Exception:  # e.g. the BackPressureError of a call refused by a full queue
            log.debug("cancelling a Serve call raised", exc_info=True)
