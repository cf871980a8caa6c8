"""Watching which files a run opens for writing, and which of those writes are allowed.

Previews must live in memory, so the no-files check records every file a run opens for
writing. Python's audit hook sees every open in the process (native code is not watched), so a
watch attributes each open to a thread and counts only the run's own:

- the thread that opened the watch (the kit's, which starts the worker that calls
  ``generate`` or ``stream()``), and
- every thread a counted thread starts while the watch is open, and theirs in turn: the
  worker, a backend's pipeline thread, a pool it creates for the run.

Opens on any other thread are not the run's doing and are not counted: a Gradio server, a cache
writer or a test's helper that happens to run in the same process at the same time. Work a
backend hands to a thread that was running before the run began (a shared pool) is not
attributed to it. Who started a thread is learnt in ``threading.Thread.start``, which the first
watch wraps (Python raises no audit event for it before 3.13); threads started without
``threading`` are not known.

One write is never the run's, whatever thread makes it: Python's ``tempfile`` writes and deletes
a probe file in the temporary folder the first time the process asks for that folder. A library
that first asks during a run (diffusers imports ``torch._dynamo`` on its first run, which asks)
would be charged with "/tmp/abcd1234"; the watch asks first, so the probe happens before it.
Nor is a write made by a module's import-time code, when a run happens to be the first to
import it: filelock 4.1 (which pip picks on Python 3.10) links a probe file in a temporary
folder as it is imported, and a run that first imports Gradio imports it.

A hook cannot be removed once added, so one is installed on first use and, like the wrapped
``Thread.start``, stays inert while no one watches.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@dataclass(eq=False)
class _Watch:
    """One open watch: where its writes go, and the threads whose opens it counts."""

    into: list[str]
    threads: set[threading.Thread] = field(default_factory=set)


_watches: list[_Watch] = []
_hook_lock = threading.Lock()
_hook_installed = False
_thread_start = threading.Thread.start


def _audit(event: str, args: tuple) -> None:
    # Called by Python for every audited action in the process; must be cheap and never raise.
    if event != "open" or not _watches:
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
        current = threading.current_thread()
        counted = [watch for watch in list(_watches) if current in watch.threads]
        if counted and not _importing():  # only the run's own threads' opens count
            for watch in counted:
                watch.into.append(path)
    except Exception:
        pass


_IMPORT_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _importing() -> bool:
    """Whether this thread is running a module's import-time code (Python's import machinery
    is on its stack): what a library does as it is imported is not the run's doing."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_MACHINERY:
            return True
        frame = frame.f_back
    return False


def _start_and_adopt(thread: threading.Thread) -> None:
    """``threading.Thread.start`` while the kit is installed: a thread started by one of a
    watch's threads joins that watch."""
    if _watches:
        starter = threading.current_thread()
        for watch in list(_watches):
            if starter in watch.threads:
                watch.threads.add(thread)
    _thread_start(thread)


@contextmanager
def watch_writes(into: list[str], active: bool = True) -> Iterator[list[str]]:
    """Record in ``into`` the paths of files opened for writing by Python code on the run's
    threads: the calling thread and the threads it starts, transitively, until the end of
    the ``with`` block."""
    global _hook_installed
    if not active:
        yield into
        return
    tempfile.gettempdir()  # the process's first call writes a probe file: not the run's
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed; inert while no one watches
            threading.Thread.start = _start_and_adopt  # type: ignore[method-assign]
            _hook_installed = True
    watch = _Watch(into, {threading.current_thread()})
    _watches.append(watch)
    try:
        yield into
    finally:
        _watches.remove(watch)


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
