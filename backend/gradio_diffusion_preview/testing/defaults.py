"""What the kit asks of a backend when not told otherwise: a small, short, seeded request and
the time limits that keep a hanging backend from hanging the test run (limits that catch a hang,
never bounds on how prompt a backend is: that is judged by counting steps).

Kept apart so that every check and the suite agree on the same defaults.
"""

from __future__ import annotations

from typing import Any

from ..backend import Backend, Capabilities

DEFAULT_TIMEOUT = 60.0
"""Seconds one run may take before the kit gives up on it (and fails the check)."""
DEFAULT_CANCEL_AFTER = 2
"""The step after which the cancel and finish-early checks send their signal."""
DEFAULT_HANG_CEILING = 30.0
"""Seconds a run sent ``cancel()`` or ``finish_early()`` has to end before the kit calls it a
hang; ``HANG_CEILING_STEPS`` of the run's slowest step times when that is longer. How promptly
a run obeys a signal is judged by the steps it runs after it, never by this ceiling, so a busy
machine does not fail a good backend."""
HANG_CEILING_STEPS = 10
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
