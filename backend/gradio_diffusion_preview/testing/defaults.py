"""What the kit asks of a backend when not told otherwise: a small, short, seeded request and
the time limits that keep a hanging backend from hanging the test run.

Kept apart so that every check and the suite agree on the same defaults.
"""

from __future__ import annotations

from typing import Any

from ..backend import Backend

DEFAULT_TIMEOUT = 60.0
"""Seconds one run may take before the kit gives up on it (and fails the check)."""
DEFAULT_CANCEL_AFTER = 2
"""The step after which the cancel and finish-early checks send their signal."""
DEFAULT_PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def default_fields(backend: Backend) -> dict[str, Any]:
    """The request the kit makes when not told otherwise: small, 5 steps, seeded."""
    caps = backend.capabilities
    size = max(caps.min_size, 64)
    size = min(-(-size // caps.size_multiple) * caps.size_multiple, caps.max_size)
    low, high = caps.steps_range
    fields: dict[str, Any] = {
        "prompt": DEFAULT_PROMPT,
        "steps": min(max(5, low), high),
        "width": size,
        "height": size,
    }
    if caps.seed:
        fields["seed"] = 1234
    return fields
