"""ImageRetention: final image files leave the cache after a set age, so a long-running public
app does not fill its disk.

``DiffusionPreview(keep_images_for=seconds)`` hands every final image file it saves to one of
these; each save also removes the files (and their emptied folders) older than the age. Gradio's
own ``Blocks(delete_cache=...)`` sweeps on a timer as well; this one needs no timer and covers
exactly the files the component wrote. A file being served at the moment it expires is removed
at a later sweep, once no response reads it (``served_files``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .served_files import remove_unless_served


class ImageRetention:
    """Remembers saved files in order and deletes those older than ``max_age`` seconds."""

    def __init__(self, max_age: float, clock=time.monotonic) -> None:
        if max_age <= 0:
            raise ValueError(f"keep_images_for must be more than 0 seconds, not {max_age}.")
        self.max_age = max_age
        self._clock = clock
        self._files: OrderedDict[Path, float] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, path: str | Path) -> None:
        """Record a file just saved, and remove the expired ones. Gradio names cached files
        by their content, so saving an image again renews the file's age."""
        path = Path(path)
        with self._lock:
            self._files.pop(path, None)
            self._files[path] = self._clock()
        self.sweep()

    def sweep(self) -> int:
        """Remove the files older than ``max_age``, except those being served right now
        (kept for the next sweep); returns how many were removed."""
        expired = []
        with self._lock:
            limit = self._clock() - self.max_age
            while self._files:
                path, saved = next(iter(self._files.items()))
                if saved > limit:
                    break
                del self._files[path]
                expired.append((path, saved))
        removed = 0
        for path, saved in expired:
            if not remove_unless_served(path):
                with self._lock:  # still oldest: first in line for the next sweep
                    if path not in self._files:
                        self._files[path] = saved
                        self._files.move_to_end(path, last=False)
                continue
            removed += 1
            with contextlib.suppress(OSError):  # not empty, or already gone
                path.parent.rmdir()  # Gradio gives each cached file its own folder
        return removed

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)
