"""Final images written into Gradio's cache so that a file being served is never rewritten.

Gradio's ``processing_utils.save_pil_to_cache`` names each file by its content (a folder named
by the hash of the encoded bytes) and writes it with ``Path.write_bytes``, which truncates the
file first. The component saves a state's images every time the state is sent, and a finished
run's state is sent again on every frame of a compare's other panels: each save truncated and
rewrote the file a browser may be downloading, which then got fewer bytes than the
Content-Length it was promised ("Response content shorter than Content-Length").

Here the same names are kept (so the files are where Gradio's would be), but a file whose bytes
are already there is left alone, and a new one is written beside its final name and moved into
place (``os.replace``), so a reader sees either no file or the whole file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import PIL.Image
from gradio import processing_utils

ATTEMPTS = 3
"""Tries to write a file whose folder retention removed at the same moment."""


def save_to_cache(image: PIL.Image.Image, cache_dir: str | Path, name: str, fmt: str) -> str:
    """Save ``image`` as ``<cache_dir>/<hash of its bytes>/<name>.<fmt>`` (as Gradio does) and
    return the path; an existing file with those bytes is not written again."""
    data = processing_utils.encode_pil_to_bytes(image, fmt)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    path = (folder / f"{name}.{fmt}").resolve()
    for attempt in range(ATTEMPTS):
        try:
            if _holds(path, len(data)):
                return str(path)
            folder.mkdir(parents=True, exist_ok=True)
            _write_whole(path, data)
            return str(path)
        except FileNotFoundError:  # retention removed the folder between two calls
            if attempt == ATTEMPTS - 1:
                raise
    return str(path)


def _holds(path: Path, size: int) -> bool:
    """Whether ``path`` already holds the bytes: its folder is named by their hash, so a file
    of the right size there is the same image."""
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _write_whole(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
