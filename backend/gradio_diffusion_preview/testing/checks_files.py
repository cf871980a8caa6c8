"""The no-files check: previews live in memory, so neither a run of ``generate`` nor the whole
``stream()`` path may open a file for writing (model caches and allowed folders aside)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..backend import Backend
from .checks_events import expect_event_order
from .checks_stream import record_stream
from .defaults import DEFAULT_TIMEOUT
from .file_writes import forbidden_writes
from .recording import Recording, run_backend
from .report import ConformanceError, describe_states


def check_no_files(
    backend: Backend,
    *,
    recording: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    allow_writes_under: Sequence[str | os.PathLike] = (),
    **fields: Any,
) -> None:
    """Neither a run of ``generate`` nor the whole ``stream()`` path opens a file for writing
    (previews live in memory). Model caches (Hugging Face, torch) and ``allow_writes_under``
    are exempt. Python-level opens count on the run's own threads: the one that calls
    ``generate`` and every thread started from it, transitively; other threads of the process
    are not the backend's doing, and native code is not watched."""
    rec = recording if recording is not None and recording.watched else None
    rec = rec or run_backend(backend, timeout=timeout, watch_files=True, **fields)
    expect_event_order(rec, "no_files")
    expect_no_writes(
        rec.backend, "a run of generate()", rec.writes, allow_writes_under, rec.trace()
    )
    states, writes = record_stream(backend, rec.request, timeout, watch_files=True)
    expect_no_writes(rec.backend, "stream()", writes, allow_writes_under, describe_states(states))


def expect_no_writes(
    backend: str,
    what: str,
    writes: list[str],
    allowed: Sequence[str | os.PathLike],
    trace: str,
) -> None:
    """Fail the no-files check if ``what`` opened for writing a file it may not write."""
    bad = forbidden_writes(writes, allowed)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ConformanceError(
            backend,
            "no_files",
            f"{what} to write no files (previews stay in memory)",
            f"files opened for writing: {shown}",
            trace,
            fix="keep previews and final images in memory (PIL images, numpy arrays, "
            "io.BytesIO for a service's bytes), never tempfile or a cache folder; a model "
            "cache of your own is passed to the kit as allow_writes_under=[folder]",
        )
