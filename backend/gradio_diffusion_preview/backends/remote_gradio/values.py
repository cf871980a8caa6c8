"""Images out of the values a remote Gradio app returns, in memory.

Previews arrive as data URLs (a remote ``DiffusionPreview``'s ``preview`` and ``previews``) and
are decoded without touching a file. Final images arrive as files: gradio_client gives a
``FileData`` dict (``{"path", "url", ...}``) with ``download_files=False`` and a local path
with downloads on; a gallery gives a list of ``{"image": FileData, "caption": ...}``. Anything
else is not an image, and says so.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import PIL.Image

from ..remote_failure import RemoteFailure

FileFetcher = Callable[[dict[str, Any]], bytes]


def decode_data_url(url: Any, where: str) -> PIL.Image.Image:
    """An RGB image from a ``data:image/...;base64,...`` URL; ``RemoteFailure`` otherwise."""
    if not isinstance(url, str) or not url.startswith("data:image/") or "," not in url:
        raise _not_an_image(where, "a preview", url)
    header, payload = url.split(",", 1)
    try:
        data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else b""
        return _open(data).convert("RGB")
    except (binascii.Error, ValueError, OSError, PIL.Image.DecompressionBombError):
        raise _not_an_image(where, "a preview", url) from None


ENDED = ("done", "error", "cancelled")
"""The statuses of a DiffusionPreview state that ends its run."""


def is_preview_state(value: Any) -> bool:
    """Whether ``value`` is a DiffusionPreview state (a remote that streams into the widget)."""
    return isinstance(value, dict) and isinstance(value.get("status"), str) and "images" in value


def ends_run(value: Any) -> bool:
    """Whether ``value`` is a DiffusionPreview state that ends its run: its images are the
    final ones, never a step's, whenever it arrives."""
    return is_preview_state(value) and value["status"] in ENDED


def final_images(
    value: Any, fetch: FileFetcher, where: str, downloads: str | None = None
) -> list[PIL.Image.Image]:
    """The images in one output value: a FileData dict, a local path under ``downloads`` (the
    client's download folder, when it downloads), a data URL, a list (a gallery) of those, or
    a DiffusionPreview state (its ``images``)."""
    if is_preview_state(value):
        value = value["images"]
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise _not_an_image(where, "the final value", value)
    return [_image(item, fetch, where, downloads) for item in items]


def _image(item: Any, fetch: FileFetcher, where: str, downloads: str | None) -> PIL.Image.Image:
    if isinstance(item, dict) and "image" in item and "path" not in item:
        item = item["image"]  # a gallery entry: {"image": FileData, "caption": ...}
    if isinstance(item, dict) and isinstance(item.get("path"), str):
        return _fetched_image(item, fetch, where)
    try:
        if isinstance(item, str) and item.startswith("data:image/"):
            return decode_data_url(item, where)
        if isinstance(item, str) and downloads and _inside(item, downloads):
            return _open(Path(item).read_bytes())
    except (ValueError, OSError, PIL.Image.DecompressionBombError):
        pass
    raise _not_an_image(where, "the final value", item)


REFETCH_AFTER = 0.2
"""Seconds before a file that did not read as an image is fetched once more."""


def _fetched_image(file: dict[str, Any], fetch: FileFetcher, where: str) -> PIL.Image.Image:
    """The image in a file the app returned, fetched again once if it does not read as one.

    Gradio names a cached file by its content and writes it again on every save, truncating
    it first: while two runs that made the same image (the same seed and prompt) save it,
    the app can send the file empty or cut short. The second fetch gets it whole."""
    for attempt in (1, 2):
        data = fetch(file)
        try:
            return _open(data)
        except (ValueError, OSError, PIL.Image.DecompressionBombError):
            if attempt == 1:
                time.sleep(REFETCH_AFTER)
    name = Path(file["path"]).name
    raise RemoteFailure(
        f"The Gradio app {where} sent a file that is not an image, twice: {name!r} "
        f"({len(data):,} bytes). Fix: point options.output at the output holding the image "
        "(see docs/backends/remote-gradio.md).",
        "remote_error",
    )


def _inside(path: str, folder: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        return False


def _open(data: bytes) -> PIL.Image.Image:
    """A fully loaded image from bytes; raises ``OSError``/``ValueError`` for anything else."""
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
    return image if image.mode in ("RGB", "RGBA") else image.convert("RGB")


def _not_an_image(where: str, what: str, value: Any) -> RemoteFailure:
    text = repr(value)
    if len(text) > 80:
        text = text[:80] + "…"
    fix = (
        "the remote app's previews are broken; report it to its owner"
        if what == "a preview"
        else "point options.output at the output holding the image (see "
        "docs/backends/remote-gradio.md)"
    )
    return RemoteFailure(
        f"The Gradio app {where} sent {what} that is not an image: {type(value).__name__} "
        f"{text}. Fix: {fix}.",
        "remote_error",
    )
