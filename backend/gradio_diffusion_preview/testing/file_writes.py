"""Watching which files a backend opens for writing, and which of those writes are allowed.

Previews must live in memory, so the no-files check records every file opened for writing
while a backend runs. Python's audit hook sees opens on every thread (native code is not
watched). A hook cannot be removed once added, so one is installed on first use and stays
inert while no one watches.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_watchers: list[list[str]] = []
_hook_lock = threading.Lock()
_hook_installed = False
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    # Called by Python for every audited action in the process; must be cheap and never raise.
    if event != "open" or not _watchers:
        return
    try:
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
            isinstance(mode, str) and any(letter in mode for letter in "wax+")
        )
        if not writing:
            return
        path = os.path.abspath(os.fsdecode(path))
        if path.endswith((".pyc", ".pyc.tmp")) or "__pycache__" in path:
            return  # imports may cache bytecode at any time
        for watcher in list(_watchers):
            watcher.append(path)
    except Exception:
        pass


@contextmanager
def watch_writes(into: list[str], active: bool = True) -> Iterator[list[str]]:
    """Record the paths of files opened for writing (by Python code, on any thread)."""
    global _hook_installed
    if not active:
        yield into
        return
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed; inert while no one watches
            _hook_installed = True
    _watchers.append(into)
    try:
        yield into
    finally:
        _watchers.remove(into)


def model_cache_dirs() -> list[str]:
    """Model caches: downloading or locking a model there is not writing a preview."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
    dirs = [xdg / "huggingface", xdg / "torch"]
    dirs += [
        Path(os.environ[name])
        for name in ("HF_HOME", "HF_HUB_CACHE", "TORCH_HOME")
        if os.environ.get(name)
    ]
    return [str(path.resolve()) for path in dirs]


def forbidden_writes(writes: list[str], allowed: Sequence[str | os.PathLike]) -> list[str]:
    """The written paths, sorted and once each, that are neither devices (``/dev``, ``/proc``)
    nor under a model cache or one of the ``allowed`` folders."""
    exempt = model_cache_dirs() + [str(Path(p).resolve()) for p in allowed]
    return sorted(
        {
            p
            for p in writes
            if not p.startswith(("/dev/", "/proc/"))
            and not any(p == d or p.startswith(d + os.sep) for d in exempt)
        }
    )
