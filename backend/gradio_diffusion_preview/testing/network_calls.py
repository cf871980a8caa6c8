"""Watching for network calls made by the current thread, for the rule that
``Backend.availability()`` is network-free (it is asked before every run).

Python's audit hook reports every socket connect and address look-up. A hook cannot be removed
once added, so one is installed on first use and stays inert while no one watches; it records
only calls made on the thread that watches, so other threads' traffic is never blamed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_watchers: dict[int, list[str]] = {}
_hook_lock = threading.Lock()
_hook_installed = False
_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname")


def _audit(event: str, args: tuple) -> None:
    # Called by Python for every audited action in the process; must be cheap and never raise.
    if not _watchers or event not in _EVENTS:
        return
    try:
        into = _watchers.get(threading.get_ident())
        if into is not None:
            target = args[1] if event == "socket.connect" else args[:2]
            into.append(f"{event.removeprefix('socket.')} {target!r}")
    except Exception:
        pass


@contextmanager
def watch_network(into: list[str]) -> Iterator[list[str]]:
    """Record the network calls (connects, address look-ups) this thread makes meanwhile."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed; inert while no one watches
            _hook_installed = True
    _watchers[threading.get_ident()] = into
    try:
        yield into
    finally:
        _watchers.pop(threading.get_ident(), None)
