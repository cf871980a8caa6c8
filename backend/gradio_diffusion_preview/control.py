"""RunControl: the two signals a consumer can send to a running backend, safe across threads."""

from __future__ import annotations

import threading
from collections.abc import Callable


class RunControl:
    """Cancel (discard the run) or finish early (keep the current estimate as the final image).

    Backends check ``cancelled`` at least once per step and stop promptly; backends whose
    capabilities declare ``finish_early`` also check ``finish_requested``. A backend that passes
    the signals on elsewhere (another process) ``watch``es them.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._finish = threading.Event()
        self._watchers: list[Callable[[], None]] = []
        self._watchers_lock = threading.Lock()

    def cancel(self) -> None:
        self._cancel.set()
        self._tell_watchers()

    def finish_early(self) -> None:
        self._finish.set()
        self._tell_watchers()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finish_requested(self) -> bool:
        return self._finish.is_set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once on cancel; True if cancelled."""
        return self._cancel.wait(timeout)

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` now and after every signal, on the thread that sends it (keep it
        fast); returns the function that stops the calls."""
        with self._watchers_lock:
            self._watchers.append(watcher)
        watcher()

        def unwatch() -> None:
            with self._watchers_lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

        return unwatch

    def _tell_watchers(self) -> None:
        with self._watchers_lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher()
