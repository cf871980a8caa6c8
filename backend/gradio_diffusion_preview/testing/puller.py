"""Pulling from a backend's iterator on a worker thread, one item at a time, with a time limit.

A backend that hangs is then reported instead of hanging the test run (the server runs
backends on a thread too). The iterator is only advanced when asked, as a consumer would.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any


class Puller:
    """Pulls from the iterator that ``make()`` returns, on a daemon thread named after ``name``."""

    def __init__(self, make: Callable[[], Any], name: str) -> None:
        self._asks: queue.Queue[str] = queue.Queue()
        self._answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._make = make
        threading.Thread(target=self._work, name=f"gdp-conformance-{name}", daemon=True).start()

    def _work(self) -> None:
        iterator = None
        try:
            while self._asks.get() == "next":
                try:
                    if iterator is None:
                        made = self._make()
                        if made is None:
                            raise TypeError(
                                "generate returned None instead of an iterator of "
                                "events (is it missing its `yield`s?)"
                            )
                        iterator = iter(made)
                    item = next(iterator)
                except StopIteration:
                    self._answers.put(("end", None))
                    return
                except BaseException as error:  # reported as the backend's failure
                    self._answers.put(("raised", error))
                    return
                self._answers.put(("item", item))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with suppress(Exception):  # a backend's broken cleanup is not this check's
                    close()
            self._answers.put(("closed", None))

    def next(self, timeout: float) -> tuple[str, Any]:
        """("item", x), ("end", None), ("raised", error) or ("timeout", None)."""
        self._asks.put("next")
        try:
            return self._answers.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return "timeout", None

    def close(self, wait: float = 2.0) -> None:
        """Stop pulling and close the iterator (its ``finally`` blocks run) on the worker."""
        self._asks.put("stop")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if self._answers.get(timeout=max(deadline - time.monotonic(), 0.0))[0] == "closed":
                    return
            except queue.Empty:
                return
