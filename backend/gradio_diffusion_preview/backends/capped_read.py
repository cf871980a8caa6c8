"""``read_capped``: the body of a streamed HTTP answer, read only up to a size limit, so that a
remote service (or whatever answers at its address) cannot fill this server's memory.

httpx is only named in type hints here; the callers have already imported it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .remote_failure import RemoteFailure

if TYPE_CHECKING:
    import httpx


def read_capped(response: httpx.Response, limit: int, too_large: str) -> bytes:
    """The body of ``response`` (opened with ``stream=True``); once it passes ``limit`` bytes,
    reading stops with ``RemoteFailure(too_large, "remote_error")``."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise RemoteFailure(too_large, "remote_error")
        chunks.append(chunk)
    return b"".join(chunks)
