"""Per-model defaults and limits for diffusers models, judged without loading them.

Distilled models want few steps and little or no guidance (SD-Turbo and SDXL-Turbo: 1 to 4 steps,
guidance 0; FLUX.1-schnell: 1 to 4 steps; LCM: about 4 steps at guidance 1 to 2), and each family
has its native size (SD 1.x 512 px, SDXL/SD3/Flux 1024 px). A model is judged by its name (a repo
id or a folder name), by the pipeline class in its ``model_index.json`` (the steps and guidance
of that class's ``__call__``, see ``family_defaults``) and by its denoiser's and VAE's configs
(the size it makes by default, whether it takes guidance), read from the folder or the local
Hugging Face cache. No torch, no network: validation asks this before every run.

A model folder may also state its own defaults in ``diffusion_preview.json``
(``{"defaults": {...ModelDefaults fields...}}``), which win over these rules.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from ...backend import ModelDefaults
from .family_defaults import (
    CALL_DEFAULTS,
    STEPS_CHOSEN,
    guidance_distilled,
    native_size,
    step_distilled,
)

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
    if class_name in CALL_DEFAULTS:
        merged.update(_class_defaults(class_name, lambda path: _config(model, folder, path)))
    name = (Path(model).name if folder else model).lower()
    for words, defaults in _BY_NAME:
        if any(word in name for word in words):
            merged.update(defaults.overrides())
            break
    return ModelDefaults(**merged) if merged else None


# Sizes outside these are the backend's limits: a tiny test model's own size below them is not
# taken as its default (the class's size is).
_SIZE_LIMITS = (64, 2048)


def _class_defaults(class_name: str, read) -> dict:
    """The defaults of pipeline class ``class_name``, with the size and guidance its configs
    (``read(relative path)``) state."""
    call = CALL_DEFAULTS[class_name]
    size = native_size(read)
    if size is None or not _SIZE_LIMITS[0] <= size <= _SIZE_LIMITS[1]:
        size = call.size
    fields: dict = {
        "default_size": (size, size),
        "default_steps": STEPS_CHOSEN.get(class_name, call.steps),
    }
    distilled = guidance_distilled(read)
    if call.guidance is None:
        if not distilled:  # the guidance_scale goes nowhere
            fields["guidance"] = False
    elif class_name in ("FluxPipeline", "FluxKontextPipeline") and distilled is False:
        fields["guidance"] = False  # FLUX.1-schnell: no guidance embedding, no CFG
    elif step_distilled(read):
        fields["guidance"] = False  # FLUX.2 [klein] distilled: guidance ignored
    else:
        fields["default_guidance"] = call.guidance
    if not call.negative_prompt:
        fields["negative_prompt"] = False
    if call.size_multiple:
        fields["size_multiple"] = call.size_multiple
    return fields


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


def _config(model: str, folder: Path | None, path: str) -> dict | None:
    """The JSON file ``path`` of the model (its folder, or the Hugging Face cache), or None."""
    file: Path | None = folder / path if folder else None
    if file is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, path)
        except Exception:  # not a repo id, or no cache
            cached = None
        file = Path(cached) if isinstance(cached, str) else None
    if file is None or not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _class_name(model: str, folder: Path | None) -> str | None:
    name = (_config(model, folder, "model_index.json") or {}).get("_class_name")
    return name if isinstance(name, str) else None
