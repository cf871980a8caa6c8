"""Per-model defaults and limits for diffusers models, judged without loading them.

Distilled models want few steps and little or no guidance (SD-Turbo and SDXL-Turbo: 1 to 4 steps,
guidance 0; FLUX.1-schnell: 1 to 4 steps; LCM: about 4 steps at guidance 1 to 2), and each family
has its native size (SD 1.x 512 px, SDXL/SD3/Flux 1024 px). A model is judged by its name (a repo
id or a folder name) and by the pipeline class in its ``model_index.json``, read from the folder
or the local Hugging Face cache. No torch, no network: validation asks this before every run.

A model folder may also state its own defaults in ``diffusion_preview.json``
(``{"defaults": {...ModelDefaults fields...}}``), which win over these rules.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from ...backend import ModelDefaults

log = logging.getLogger(__name__)

OWN_DEFAULTS_FILE = "diffusion_preview.json"

# (words any of which in the lower-cased name selects the rule, the defaults), first match wins.
_BY_NAME: list[tuple[tuple[str, ...], ModelDefaults]] = [
    (
        ("flux.1-schnell", "flux-schnell", "schnell"),
        ModelDefaults(default_steps=4, steps_range=(1, 4), default_guidance=0.0),
    ),
    (
        ("sd3.5-large-turbo", "stable-diffusion-3.5-large-turbo"),
        ModelDefaults(default_steps=4, steps_range=(1, 8), default_guidance=0.0),
    ),
    (
        ("sdxl-turbo", "sd-turbo", "-turbo"),
        ModelDefaults(
            default_steps=1, steps_range=(1, 4), default_guidance=0.0, guidance_range=(0.0, 2.0)
        ),
    ),
    (
        ("lightning", "hyper-sd", "hyper_sd"),
        ModelDefaults(
            default_steps=4, steps_range=(1, 8), default_guidance=0.0, guidance_range=(0.0, 2.0)
        ),
    ),
    (
        ("lcm",),
        ModelDefaults(
            default_steps=4, steps_range=(1, 8), default_guidance=1.5, guidance_range=(1.0, 2.0)
        ),
    ),
    (("flux.1-dev", "flux-dev"), ModelDefaults(default_steps=28, default_guidance=3.5)),
]

# The native size and usual settings of each pipeline class (from model_index.json).
_BY_CLASS: dict[str, ModelDefaults] = {
    "StableDiffusionXLPipeline": ModelDefaults(default_size=(1024, 1024), default_steps=30),
    "StableDiffusion3Pipeline": ModelDefaults(
        default_size=(1024, 1024), default_steps=28, default_guidance=7.0, size_multiple=16
    ),
    "FluxPipeline": ModelDefaults(
        default_size=(1024, 1024),
        default_steps=28,
        default_guidance=3.5,
        negative_prompt=False,
        size_multiple=16,
    ),
}


def defaults_for(model: str) -> ModelDefaults | None:
    """The defaults and limits for ``model`` (a folder or a repo id), or None for none."""
    return _defaults_for(model, _stamp(model))


@functools.lru_cache(maxsize=256)
def _defaults_for(model: str, _stamp: float | None) -> ModelDefaults | None:
    folder = _local_folder(model)
    own = _own_defaults(folder) if folder else None
    if own is not None:
        return own
    merged: dict = {}
    class_name = _class_name(model, folder)
    if class_name in _BY_CLASS:
        merged.update(_BY_CLASS[class_name].overrides())
    name = (Path(model).name if folder else model).lower()
    for words, defaults in _BY_NAME:
        if any(word in name for word in words):
            merged.update(defaults.overrides())
            break
    return ModelDefaults(**merged) if merged else None


def _stamp(model: str) -> float | None:
    """A folder's model_index/defaults modification time, so edits are seen; None otherwise."""
    folder = _local_folder(model)
    if folder is None:
        return None
    times = [
        (folder / name).stat().st_mtime
        for name in ("model_index.json", OWN_DEFAULTS_FILE)
        if (folder / name).is_file()
    ]
    return max(times, default=None)


def _local_folder(model: str) -> Path | None:
    try:
        path = Path(model).expanduser()
        return path if path.is_dir() else None
    except (OSError, ValueError):
        return None


def _own_defaults(folder: Path) -> ModelDefaults | None:
    file = folder / OWN_DEFAULTS_FILE
    if not file.is_file():
        return None
    try:
        return ModelDefaults(**json.loads(file.read_text(encoding="utf-8")).get("defaults", {}))
    except (OSError, ValueError, TypeError, AttributeError) as error:
        log.warning("ignoring %s: %s", file, error)
        return None


def _class_name(model: str, folder: Path | None) -> str | None:
    index: Path | None = folder / "model_index.json" if folder else None
    if index is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "model_index.json")
        except Exception:  # not a repo id, or no cache
            cached = None
        index = Path(cached) if isinstance(cached, str) else None
    if index is None or not index.is_file():
        return None
    try:
        name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None
