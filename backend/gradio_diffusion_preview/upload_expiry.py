"""Uploads leave Gradio's cache once they are old: each new upload sweeps out the expired ones.

Gradio keeps every file uploaded to an app (``POST .../gradio_api/upload``, listed in the
Blocks' ``upload_file_set``) until the server stops, so a visitor could fill a public app's
disk ``max_file_size`` at a time. The library's tabs that take uploads (the Edit tabs) give
their app an ``UploadExpiry`` (``expire_uploads``); the request guard calls ``sweep`` on every
upload, before the new file is taken, so the disk holds at most what was uploaded within
``max_age``. No timer is needed: without uploads the folder does not grow.

Gradio's own ``Blocks(delete_cache=...)`` is not used for this: it also sweeps the files a
``DiffusionPreview`` has sent (Gradio lists them as the component's), by their creation time,
while a response may be reading them, and removes them all when the app closes, although
Gradio names cached files by their content, so another app may be serving the same file.
An upload's age is its file's ``st_ctime``: Gradio moves each upload into place, so the same
picture uploaded again is young again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .served_files import remove_unless_served


class UploadExpiry:
    """Removes an app's uploaded files once they are ``max_age`` seconds old."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.time) -> None:
        if max_age <= 0:
            raise ValueError(f"uploads must be kept more than 0 seconds, not {max_age}.")
        self.max_age = max_age
        self.clock = clock
        """Seconds since the epoch, as the files' ``st_ctime`` counts them."""

    def sweep(self, blocks: Any) -> int:
        """Remove the uploads of ``blocks`` older than ``max_age`` (one being served right now
        is left for a later sweep); returns how many were removed."""
        uploads = getattr(blocks, "upload_file_set", None)
        if not uploads:
            return 0
        limit = self.clock() - self.max_age
        removed = 0
        for name in list(uploads):
            path = Path(name)
            try:
                if path.stat().st_ctime > limit:
                    continue
            except OSError:  # already gone
                uploads.discard(name)
                continue
            if remove_unless_served(path):
                uploads.discard(name)
                removed += 1
                with contextlib.suppress(OSError):  # not empty, or already gone
                    os.rmdir(path.parent)  # Gradio gives each upload a folder of its own
        return removed


def expire_uploads(max_age: float, blocks: Any = None) -> None:
    """Have the app of ``blocks`` (default: the Blocks being built) remove each upload once it
    is ``max_age`` seconds old (at the next upload after that). The library's Edit tabs call
    it with the policy's ``image_max_age``."""
    if blocks is None:
        from gradio.context import Context

        blocks = Context.root_block
    if blocks is not None:
        blocks._gdp_upload_expiry = UploadExpiry(max_age)


def upload_expiry_of(blocks: Any) -> UploadExpiry | None:
    """The ``UploadExpiry`` of ``blocks``' app, if it has one."""
    return getattr(blocks, "_gdp_upload_expiry", None)
