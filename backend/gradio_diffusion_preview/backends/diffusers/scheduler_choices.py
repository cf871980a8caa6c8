"""The samplers a model can run, read from its scheduler config without loading it, so the
``scheduler`` choices offered for a model (in a UI, in a policy's choices, in validation) are
those that run on it: a flow-matching model (SD3, Flux) takes ``Default`` and ``Euler``; a model
with a cosine noise schedule loses ``DPM++ 2M Karras``, which diffusers cannot run on it
(huggingface/diffusers#12771, see ``schedulers._refuse_known_crash``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .schedulers import FLOW_SCHEDULERS, SCHEDULERS

CONFIG_FILE = "scheduler/scheduler_config.json"


def scheduler_config(model: str) -> dict[str, Any] | None:
    """The model's scheduler config (a folder's, or a cached repo's), or None if unknown."""
    path = Path(model).expanduser()
    file: Path | None = path / CONFIG_FILE if path.is_dir() else None
    if file is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, CONFIG_FILE)
        except Exception:  # not a repo id, no cache
            return None
        file = Path(cached) if isinstance(cached, str) else None
    try:
        return json.loads(file.read_text()) if file is not None and file.is_file() else None
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=256)
def _choices(model: str, _stamp: float | None) -> tuple[str, ...]:
    return choices_for_config(scheduler_config(model))


def choices_for_config(config: Any) -> tuple[str, ...]:
    """The ``scheduler`` values that run with a scheduler of this config (a dict, or a loaded
    scheduler's ``config``); all of them for None."""
    if config is None:
        return tuple(SCHEDULERS)
    if "FlowMatch" in str(config.get("_class_name", "")):
        return tuple(FLOW_SCHEDULERS)
    if config.get("beta_schedule") == "squaredcos_cap_v2":
        return tuple(name for name in SCHEDULERS if name != "DPM++ 2M Karras")
    return tuple(SCHEDULERS)


def scheduler_choices(model: str | None) -> tuple[str, ...]:
    """The ``scheduler`` values that run on ``model`` (all of them when it cannot be told)."""
    if not model:
        return tuple(SCHEDULERS)
    file = Path(model).expanduser() / CONFIG_FILE
    try:
        stamp = file.stat().st_mtime if file.is_file() else None
    except (OSError, ValueError):
        stamp = None
    return _choices(model, stamp)
