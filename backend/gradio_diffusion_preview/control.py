"""RunControl: the two signals a consumer can send to a running backend, safe across threads."""

from __future__ import annotations

import threading


class RunControl:
    """Cancel (discard the run) or finish early (keep the current estimate as the final image).

    Backends check ``cancelled`` at least once per step and stop promptly; backends whose
    capabilities declare ``finish_early`` also check ``finish_requested``.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._finish = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def finish_early(self) -> None:
        self._finish.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finish_requested(self) -> bool:
        return self._finish.is_set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once on cancel; True if cancelled."""
        return self._cancel.wait(timeout)
