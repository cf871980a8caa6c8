"""What the kit asks of a backend when not told otherwise: a small, short, seeded request and
the time limits that keep a hanging backend from hanging the test run.

Kept apart so that every check and the suite agree on the same defaults.
"""

from __future__ import annotations

from typing import Any

from ..backend import Backend, Capabilities

DEFAULT_TIMEOUT = 60.0
"""Seconds one run may take before the kit gives up on it (and fails the check)."""
DEFAULT_CANCEL_AFTER = 2
"""The step after which the cancel and finish-early checks send their signal."""
DEFAULT_START_CANCEL_TIMEOUT = 2.0
"""Seconds a run cancelled right after ``Started`` has to return (``check_cancel_at_start``)."""
DEFAULT_PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def capabilities_for_run(backend: Backend, model: str | None = None) -> Capabilities:
    """The capabilities that hold for a run of ``model`` (by default the backend's default
    model): the backend's, with the model's own defaults and limits applied. A listing or
    model defaults that fail fall back to the backend's own; the run then reports why."""
    try:
        return backend.capabilities_for(model or backend.default_model())
    except Exception:
        return backend.capabilities


def default_fields(backend: Backend, model: str | None = None) -> dict[str, Any]:
    """The request the kit makes when not told otherwise: small, 5 steps, seeded, within the
    limits of ``model`` (by default the backend's default model), e.g. 4 steps for a turbo
    model that allows 1 to 4."""
    caps = capabilities_for_run(backend, model)
    size = max(caps.min_size, 64)
    size = min(-(-size // caps.size_multiple) * caps.size_multiple, caps.max_size)
    low, high = caps.steps_range
    width = height = size
    if caps.sizes:  # a fixed list: its smallest
        width, height = min(caps.sizes, key=lambda pair: pair[0] * pair[1])
    fields: dict[str, Any] = {"prompt": DEFAULT_PROMPT, "width": width, "height": height}
    if caps.steps:
        fields["steps"] = min(max(5, low), high)
    if caps.seed:
        fields["seed"] = 1234
    return fields
