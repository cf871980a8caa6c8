"""Finding, loading and caching diffusers pipelines (and tiny preview decoders).

- ``locate_model``: a model is a local folder (with ``model_index.json``) or a Hugging Face repo
  id. With ``HF_HUB_OFFLINE=1`` a repo id must already be in the local cache; otherwise the
  error says how to get it there.
- ``resolve_device`` / ``resolve_dtype``: CUDA, then Apple MPS, then CPU; half precision on a GPU
  (bfloat16 for SD3/Flux where the GPU supports it, float16 otherwise), float32 on the CPU.
- ``PipelineCache``: a small LRU of loaded pipelines. Each entry has its own lock, because a
  pipeline (its scheduler, its ``_interrupt`` flag) serves one run at a time while Gradio runs
  handlers on many threads. Loading the same model twice at once is avoided with a per-key lock.
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .latent_preview import (
    MODEL_FACTORS_FILE,
    Factors,
    Family,
    family_of,
    latent_channels_of,
    read_rgb_factors,
)

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelNotFoundError(LookupError):
    """The model is neither a local pipeline folder nor in reach; ``str()`` says what to do."""


class UnsupportedModelError(ValueError):
    """The model loads but cannot be run by this backend (e.g. no step callback)."""


class OptionValueError(ValueError):
    """An option has a value this backend cannot use; ``str()`` names the valid values."""


def hub_offline() -> bool:
    """True when Hugging Face downloads are switched off (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    raw = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or raw.strip().lower() in {"1", "true", "yes", "on"}


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "./", "../", "~", "\\"))
        or model.count("/") > 1
        or bool(re.match(r"^[A-Za-z]:[\\/]", model))
        or not _REPO_ID.match(model)
    )


def _not_cached_message(model: str, reason: str) -> str:
    from huggingface_hub import constants

    return (
        f"Model '{model}' is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
        f"and {reason}. To use it, download it on a machine with network access with "
        f"`hf download {model}` (older huggingface_hub: `huggingface-cli download {model}`) and "
        "copy the cache folder here (or point HF_HOME at it), or pass the path of a local folder "
        "that holds the pipeline (with its model_index.json) as the model."
    )


@dataclass(frozen=True)
class ModelSource:
    """Where ``from_pretrained`` should load a model from."""

    model: str
    location: str  # a folder, or a repo id
    local_only: bool


def locate_model(model: str) -> ModelSource:
    """Resolve ``model`` (a folder or a repo id) without touching the network."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"Folder '{model}' is not a diffusers pipeline: it has no model_index.json. "
                "Pass the folder that `save_pretrained` wrote (or `hf download` fetched)."
            )
        return ModelSource(model, str(path.resolve()), True)
    if _looks_like_path(model):
        raise ModelNotFoundError(
            f"Model folder '{model}' does not exist. Check the path, or name a Hugging Face "
            "repo id such as 'stabilityai/sdxl-turbo'."
        )
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "model_index.json")
    offline = hub_offline()
    if isinstance(cached, str):
        return ModelSource(model, model, offline)
    if offline:
        raise ModelNotFoundError(_not_cached_message(model, "downloads are off (HF_HUB_OFFLINE=1)"))
    return ModelSource(model, model, False)


def model_class_name(source: ModelSource) -> str | None:
    """The pipeline class a model declares in its model_index.json, read without loading it."""
    if Path(source.location).is_dir():
        index = Path(source.location) / "model_index.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source.location, "model_index.json")
        index = Path(cached) if isinstance(cached, str) else None
    try:
        return json.loads(index.read_text()).get("_class_name") if index else None
    except (OSError, ValueError):
        return None


def resolve_device(requested: str | None) -> torch.device:
    """``auto`` (or None): CUDA, then MPS, then CPU. Otherwise the named device, if present."""
    name = (requested or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise OptionValueError(
            f"device {requested!r} is not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if not available.get(device.type, False):
        have = ", ".join(kind for kind, ok in available.items() if ok)
        raise OptionValueError(
            f"device {requested!r} is not available on this machine "
            f"(available: {have}); use auto or one of those"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise OptionValueError(
            f"device {requested!r} does not exist: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def resolve_dtype(
    requested: str | None, device: torch.device, class_name: str | None
) -> torch.dtype:
    """``auto``: float32 on the CPU, half precision on a GPU (see the module docstring)."""
    name = (requested or "auto").strip().lower()
    if name != "auto":
        if name not in DTYPES:
            raise OptionValueError(
                f"dtype {requested!r} is unknown; use auto, float32, float16 or bfloat16"
            )
        dtype = DTYPES[name]
        if device.type == "cpu" and dtype == torch.float16:
            log.warning("float16 on the CPU is slow and often unsupported; consider float32")
        return dtype
    if device.type == "cpu":
        return torch.float32
    wants_bf16 = bool(class_name) and ("Flux" in class_name or "StableDiffusion3" in class_name)
    if wants_bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures, whatever type torch gives them."""
    kinds = tuple(
        kind
        for kind in (
            getattr(torch, "OutOfMemoryError", None),
            getattr(torch.cuda, "OutOfMemoryError", None),
        )
        if kind
    )
    if isinstance(error, MemoryError) or (kinds and isinstance(error, kinds)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text
    )


def release_memory(device: torch.device | None = None) -> None:
    """Collect garbage and hand cached device memory back."""
    gc.collect()
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if device is not None and device.type == "mps" and mps is not None:
        mps.empty_cache()


@dataclass
class LoadedPipeline:
    """A loaded pipeline with what runs need to know about it, and the lock runs take."""

    key: tuple[str, str, str]
    pipe: Any
    device: torch.device
    dtype: torch.dtype
    family: Family
    latent_channels: int
    vae_scale_factor: int
    call_parameters: frozenset[str]
    base_scheduler: Any
    rgb_factors: Factors | None = None  # the model's own latent_rgb.json, if it ships one
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def model(self) -> str:
        return self.key[0]

    @classmethod
    def of(cls, pipe: Any, model: str, rgb_factors: Factors | None = None) -> LoadedPipeline:
        """``pipe`` (already on its device) with what runs need to know about it, under the
        name ``model``: the one way a loaded or an app's own pipeline becomes an entry."""
        device, dtype = pipe.device, pipe.dtype
        return cls(
            key=(model, str(device), str(dtype).removeprefix("torch.")),
            pipe=pipe,
            device=device,
            dtype=dtype,
            family=family_of(pipe),
            latent_channels=latent_channels_of(pipe),
            vae_scale_factor=int(getattr(pipe, "vae_scale_factor", 8) or 8),
            call_parameters=frozenset(inspect.signature(pipe.__call__).parameters),
            base_scheduler=pipe.scheduler,
            rgb_factors=rgb_factors,
        )


def model_rgb_factors(source: ModelSource) -> Factors | None:
    """The latent-to-RGB factors a model ships in its folder (or its cached repo), if any."""
    if Path(source.location).is_dir():
        return read_rgb_factors(Path(source.location) / MODEL_FACTORS_FILE)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source.location, MODEL_FACTORS_FILE)
    return read_rgb_factors(cached) if isinstance(cached, str) else None


def dtype_argument(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """``from_pretrained``'s dtype keyword: ``dtype`` in new diffusers, ``torch_dtype`` before."""
    import importlib.util

    new = importlib.util.find_spec("diffusers.utils.deprecation_utils") is not None
    return {"dtype" if new else "torch_dtype": dtype}


def has_step_callback(parameters: frozenset[str]) -> bool:
    """Whether a pipeline's ``__call__`` takes a step callback: ``callback_on_step_end``, or the
    older ``callback(step, timestep, latents)`` with ``callback_steps`` (PixArt-alpha and -Sigma
    in diffusers 0.42.1), which ``PipelineRun`` calls every step."""
    return "callback_on_step_end" in parameters or {"callback", "callback_steps"} <= parameters


def legacy_refusal(pipe: Any, parameters: frozenset[str]) -> str | None:
    """Why a pipeline with only the older ``callback`` cannot be run here, or None. Such a
    loop ignores the callback's return, so finishing early leaves the loop and decodes the x0
    estimate with the pipeline's VAE: a pipeline without one that can be decoded so cannot
    finish early. A combined prior + decoder pipeline's prior stage takes no callback at all."""
    if "callback_on_step_end" in parameters:
        return None
    if getattr(pipe, "prior_pipe", None) is not None:
        return "its prior stage takes no callback, so a Stop there waits for the whole prior"
    from .finishing import decodable

    if not decodable(pipe):
        return (
            "no VAE (it denoises pixels, as DeepFloyd IF's first stage does), so neither its "
            "previews nor an early finish can be made from its latents here"
        )
    return None


_WUERSTCHEN_PARTS = {
    "`PaellaVQModel`": "PaellaVQModel",
    "`WuerstchenDiffNeXt`": "WuerstchenDiffNeXt",
    "`WuerstchenPrior`": "WuerstchenPrior",
    "wuerstchen is not one of the libraries": 'library "wuerstchen"',
}
"""Parts of diffusers' load errors that name a Würstchen component, with how to name it."""


def deprecated_wuerstchen_refusal(load_error: str) -> str | None:
    """Why a Würstchen or Stable Cascade model cannot be loaded, from diffusers' load error, or
    None. Their VQ-GAN (``PaellaVQModel``) and Würstchen's denoisers live under diffusers'
    ``pipelines/deprecated/wuerstchen`` (0.42.1), where ``from_pretrained`` does not look: a
    model declaring them fails to load, whichever library its ``model_index.json`` names."""
    part = next((name for key, name in _WUERSTCHEN_PARTS.items() if key in load_error), None)
    if part is None:
        return None
    import diffusers

    return (
        f"declares a Würstchen component ({part}: Würstchen and Stable "
        f"Cascade's VQ-GAN and denoisers), which diffusers {diffusers.__version__} keeps only "
        "under pipelines/deprecated and cannot load from a model's files. Use another "
        "text-to-image model"
    )


def load_pipeline(source: ModelSource, device: torch.device, dtype: torch.dtype) -> LoadedPipeline:
    """Load a text-to-image pipeline and move it to ``device``."""
    import diffusers
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    from .edit_capabilities import NOT_RUN_EDITING

    class_name = model_class_name(source)
    if class_name in NOT_RUN_EDITING:  # refused before loading gigabytes
        raise UnsupportedModelError(
            f"Model '{source.model}' is a {class_name}, an editing pipeline this backend does "
            f"not run: {NOT_RUN_EDITING[class_name]}. Use FLUX.1 Kontext for instruction "
            "editing, or an image-to-image model"
        )

    kwargs: dict[str, Any] = dtype_argument(dtype)
    if source.local_only:
        kwargs["local_files_only"] = True
    try:
        try:
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(source.location, **kwargs)
        except ValueError as error:  # a pipeline class with no text-to-image mapping
            if "AutoPipeline" not in str(error):
                raise
            pipe = diffusers.DiffusionPipeline.from_pretrained(source.location, **kwargs)
    except ValueError as error:
        why_not = deprecated_wuerstchen_refusal(str(error))
        if why_not:
            raise UnsupportedModelError(f"Model '{source.model}' {why_not}") from None
        raise
    except GatedRepoError as error:
        raise ModelNotFoundError(
            f"Model '{source.model}' is gated on the Hugging Face Hub: accept its licence on "
            "its page, log in with `hf auth login`, then try again. "
            f"({type(error).__name__}: {error})"
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"No model named '{source.model}' on the Hugging Face Hub (or it is private). "
            "Check the repo id, or pass a local folder."
        ) from None
    except OSError as error:
        if Path(source.location).is_dir():
            raise ModelNotFoundError(
                f"Model folder '{source.model}' could not be loaded: {error}"
            ) from None
        raise ModelNotFoundError(
            _not_cached_message(source.model, "it could not be downloaded") + f" ({error})"
        ) from None
    parameters = frozenset(inspect.signature(pipe.__call__).parameters)
    if not has_step_callback(parameters):
        raise UnsupportedModelError(
            f"Model '{source.model}' loads as {type(pipe).__name__}, which has neither "
            "callback_on_step_end nor the older callback and callback_steps, so its steps "
            "cannot be previewed or stopped. Use a text-to-image pipeline that has one "
            "(Stable Diffusion 1.x/2.x, SDXL, SD3, Flux, PixArt...)."
        )
    why_not = legacy_refusal(pipe, parameters)
    if why_not:
        raise UnsupportedModelError(
            f"Model '{source.model}' loads as {type(pipe).__name__}, which has no "
            f"callback_on_step_end, only the older callback, and {why_not}. Use a text-to-image "
            "pipeline with a VAE (Stable Diffusion 1.x/2.x, SDXL, SD3, Flux, PixArt...)"
        )
    if "num_frames" in parameters:
        raise UnsupportedModelError(
            f"Model '{source.model}' loads as {type(pipe).__name__}, a video pipeline; this "
            "backend makes still images. Use a text-to-image model"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline.of(pipe, source.model, model_rgb_factors(source))


class PipelineCache:
    """Keeps the ``size`` most recently used pipelines loaded."""

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._entries: OrderedDict[tuple[str, str, str], LoadedPipeline] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str, str], threading.Lock] = {}

    def keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._entries)

    def get(self, key: tuple[str, str, str], load: Callable[[], LoadedPipeline]) -> LoadedPipeline:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per model at a time; others wait for it
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key]
            entry = load()
            entry.key = key
            evicted = []
            with self._lock:
                self._entries[key] = entry
                while len(self._entries) > self.size:
                    evicted.append(self._entries.popitem(last=False)[1])
                self._loading.pop(key, None)
        if evicted:
            devices = {item.device for item in evicted}
            del evicted
            for device in devices:
                release_memory(device)
        return entry

    def evict(self, keep: tuple[str, str, str] | None = None) -> int:
        """Drop every pipeline but ``keep`` (a run still using one finishes with it)."""
        with self._lock:
            dropped = [key for key in self._entries if key != keep]
            for key in dropped:
                del self._entries[key]
        release_memory()
        return len(dropped)


class TinyDecoderCache:
    """Loaded TAESD-family decoders, by (source, device, dtype): from the local cache, or
    downloaded (a few MB) when downloads are allowed; a source that cannot be had is remembered
    as missing, so a run never waits on it twice."""

    def __init__(self) -> None:
        self._decoders: dict[tuple[str, str, str], Any] = {}
        self._missing: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, source: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, str | None]:
        """(decoder, None), or (None, why it is unavailable)."""
        key = (source, str(device), str(dtype))
        with self._lock:
            if key in self._decoders:
                return self._decoders[key], None
            if key in self._missing:
                return None, self._missing[key]
            from diffusers import AutoencoderTiny

            try:
                decoder = (
                    AutoencoderTiny.from_pretrained(
                        source, local_files_only=hub_offline(), **dtype_argument(dtype)
                    )
                    .to(device)
                    .eval()
                )
            except Exception as error:  # not cached, not a folder, not a tiny autoencoder
                where = "locally" if hub_offline() else "locally or from the Hub"
                why = (
                    f"tiny decoder '{source}' is not available {where} "
                    f"({type(error).__name__}); download it with `hf download {source}` "
                    "or pass a folder with 'taesd:<folder>'"
                )
                self._missing[key] = why
                return None, why
            self._decoders[key] = decoder
            return decoder, None
