"""The a1111 backend's own endpoint settings (``Endpoint.options``), checked once, up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...endpoints import EndpointConfigError


@dataclass(frozen=True)
class A1111Settings:
    """Kind-specific settings of one AUTOMATIC1111 / Forge / SD.Next endpoint."""

    poll_interval: float = 0.25
    """Seconds between progress polls of a run (and of the reaper)."""
    previews: bool = True
    """Ask for a live preview of each step (per run, restored afterwards)."""
    preview_every_n_steps: int = 1
    """The server's ``show_progress_every_n_steps`` for our runs (its default is 10)."""
    preview_max_side: int = 512
    """The longest side of a relayed preview, in pixels."""
    sampler: str | None = None
    """The sampler when a request names none; None leaves it to the server."""
    scheduler: str | None = None
    """The scheduler when a request names none; None leaves it to the server."""


_RULES: dict[str, tuple[type, Any, Any, str]] = {
    "poll_interval": (float, 0.02, 5.0, "seconds between progress polls, 0.02 to 5"),
    "previews": (bool, None, None, "true or false"),
    "preview_every_n_steps": (int, 1, 32, "a whole number from 1 to 32"),
    "preview_max_side": (int, 64, 2048, "pixels, 64 to 2048"),
    "sampler": (str, None, None, "a sampler name the server lists"),
    "scheduler": (str, None, None, "a scheduler name the server lists"),
}


def parse_settings(endpoint_id: str, options: dict[str, Any]) -> A1111Settings:
    """``A1111Settings`` from an endpoint's options; ``EndpointConfigError`` names a wrong one."""
    values: dict[str, Any] = {}
    for name, value in options.items():
        if name not in _RULES:
            raise EndpointConfigError(
                f"Endpoint '{endpoint_id}' (a1111) has an unknown option '{name}'. Fix: use only "
                f"{', '.join(_RULES)} (see docs/backends/a1111.md)."
            )
        kind, low, high, rule = _RULES[name]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and low is not None and not low <= value <= high:
            ok = False
        if ok and kind is str and not value.strip():
            ok = False
        if not ok:
            raise EndpointConfigError(
                f"Endpoint '{endpoint_id}' (a1111): option {name}={value!r} is not allowed. "
                f"Fix: give {rule}."
            )
        values[name] = value.strip() if kind is str else value
    return A1111Settings(**values)
