"""DiffusersBackend: runs any local diffusers text-to-image pipeline with step previews.

Models are local folders or Hugging Face repo ids (from the local cache; see ``loading``).
torch, diffusers and transformers are the ``[diffusers]`` extra and are imported only when a run
starts, so importing this module (and registering the backend) stays cheap.

Request options (all optional, typed in ``options.DiffusersOptions`` and checked centrally):

- ``scheduler``: AUTOMATIC1111's sampler names: ``Default`` (the model's own), ``Euler``,
  ``Euler a``, ``DPM++ 2M``, ``DPM++ 2M Karras``, ``DDIM``, ``PLMS``, ``LMS``, ``UniPC``;
  flow-matching models (SD3, Flux) take ``Default`` or ``Euler``. The old names (``euler_a``,
  ``dpm++_karras``...) are accepted as aliases.
- ``previewer``: ``latent_rgb`` (a per-family latent-to-RGB projection), ``taesd`` (the family's
  tiny decoder), ``taesd:<folder or repo id>``, ``auto`` (taesd when available, else latent_rgb),
  ``none``. The default depends on the device: ``auto`` on a GPU (CUDA, MPS), where a tiny decoder
  costs milliseconds and gives sharp previews at display resolution; ``latent_rgb`` on the CPU,
  where it costs about 1.9 s per frame. Tiny decoders come from the local Hugging Face cache,
  and are downloaded (a few MB) when downloads are allowed (``HF_HUB_OFFLINE`` unset).
- ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``. ``dtype``: ``auto``,
  ``float32``, ``float16``, ``bfloat16``.

On the CPU, torch's threads are chosen for the machine and the runs allowed at once, not left at
torch's default (see ``cpu_threads``; the constructor's ``torch_threads`` and
``concurrent_runs``, or ``DIFFUSION_PREVIEW_TORCH_THREADS``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...backend import Backend, Capabilities, ModelInfo
from ...events import Failed
from ...typed_options import check_options
from .cpu_threads import ThreadChoice, choose, parse_setting
from .model_defaults import defaults_for
from .options import DiffusersOptions

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest

log = logging.getLogger(__name__)

PREVIEWERS = ("latent_rgb", "taesd", "auto", "none")
INSTALL_HINT = "pip install 'gradio-diffusion-preview[diffusers]'"

StepListener = Callable[[int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """A request's options as a run uses them (checked by the central validation through
    ``DiffusersOptions``, so the values are known ones)."""

    scheduler: str = "Default"
    previewer: str | None = None
    device: str | None = None
    dtype: str | None = None

    @classmethod
    def of(cls, options: dict[str, Any]) -> RunOptions:
        """The run options of a validated request's ``options``."""
        return cls(
            scheduler=options.get("scheduler") or "Default",
            previewer=options.get("previewer"),
            device=options.get("device"),
            dtype=options.get("dtype"),
        )


class DiffusersBackend(Backend):
    """Local diffusers pipelines (SD 1.x/2.x, SDXL, SD3, Flux, ...) with x0 step previews."""

    id = "diffusers"
    display_name = "Local diffusers"
    location = "local"
    capabilities = Capabilities(
        step_previews=True,
        negative_prompt=True,
        seed=True,
        guidance=True,
        guidance_range=(0.0, 30.0),
        default_guidance=7.5,
        size_multiple=8,
        min_size=64,
        max_size=2048,
        default_size=(512, 512),
        steps_range=(1, 150),
        default_steps=20,
        max_batch=4,
        cancel=True,
        finish_early=True,
        any_model=True,
        options=DiffusersOptions,
        image_to_image=True,
        inpainting=True,
        instruction_editing=True,
    )

    def __init__(
        self,
        *,
        device: str | None = None,
        dtype: str | None = None,
        previewer: str | None = None,
        cache_size: int = 2,
        models: Sequence[str] | None = None,
        preview_max_side: int = 512,
        torch_threads: int | str | None = None,
        concurrent_runs: int = 1,
    ) -> None:
        """
        Parameters:
            device: default device for runs ("auto", "cpu", "cuda", "cuda:1", "mps").
            dtype: default dtype ("auto", "float32", "float16", "bfloat16").
            previewer: default previewer ("latent_rgb", "taesd", "taesd:<source>", "auto",
                "none"); None: "auto" on a GPU, "latent_rgb" on the CPU.
            cache_size: how many loaded pipelines to keep (least recently used go first).
            models: the models to list; by default the diffusers pipelines in the Hugging Face
                cache, the bundled shapes model and the tiny demo pipelines, if built.
            preview_max_side: the longest side of a preview, in pixels.
            torch_threads: torch's intra-op threads for CPU runs: a number, "auto" (one core
                left for the app's other work, the rest shared by ``concurrent_runs``) or
                "keep" (leave torch's setting alone, for an app that sets it itself); None:
                ``DIFFUSION_PREVIEW_TORCH_THREADS``, else ``OMP_NUM_THREADS``, else "auto".
                torch's threads are process-wide: the first CPU run applies this, once, and
                logs it; runs on a GPU apply nothing (see ``cpu_threads``).
            concurrent_runs: how many runs the app lets this backend do at once (a
                ``Policy``'s slots for it); the automatic thread count shares the cores
                among them.
        """
        check_options(DiffusersOptions, {"device": device, "dtype": dtype, "previewer": previewer})
        parse_setting(torch_threads, "torch_threads")
        if isinstance(concurrent_runs, bool) or not isinstance(concurrent_runs, int):
            raise ValueError(f"concurrent_runs must be a whole number, got {concurrent_runs!r}")
        if concurrent_runs < 1:
            raise ValueError(f"concurrent_runs must be at least 1, got {concurrent_runs}")
        self.device = device
        self.dtype = dtype
        self.previewer = previewer
        self.cache_size = cache_size
        self.preview_max_side = preview_max_side
        self.torch_threads = torch_threads
        self.concurrent_runs = concurrent_runs
        self._thread_choice: ThreadChoice | None = None
        self._listed = list(models) if models is not None else None
        self.step_listeners: list[StepListener] = []
        """Called as ``listener(step, total_steps)`` on the generation thread after every step
        (before the cancel check); for monitoring and tests. Keep them fast."""
        self._state_lock = threading.Lock()
        self._active = 0
        self._cache_obj = None
        self._tiny_obj = None

    # Heavy state is created on first use so that constructing the backend imports no torch.
    @property
    def _cache(self):
        with self._state_lock:
            if self._cache_obj is None:
                from .loading import PipelineCache

                self._cache_obj = PipelineCache(self.cache_size)
            return self._cache_obj

    @property
    def _tiny(self):
        with self._state_lock:
            if self._tiny_obj is None:
                from .loading import TinyDecoderCache

                self._tiny_obj = TinyDecoderCache()
            return self._tiny_obj

    def cpu_thread_choice(self) -> ThreadChoice:
        """This backend's thread choice for CPU runs, made at its first CPU run (the
        environment is read then) and kept."""
        with self._state_lock:
            if self._thread_choice is None:
                self._thread_choice = choose(self.torch_threads, self.concurrent_runs)
            return self._thread_choice

    @property
    def active_runs(self) -> int:
        """Runs whose generation thread is still working."""
        return self._active

    def loaded_models(self) -> list[tuple[str, str, str]]:
        """(model, device, dtype) of the pipelines held in the cache, oldest first."""
        return [] if self._cache_obj is None else self._cache_obj.keys()

    def load(self, model: str) -> None:
        """Load ``model`` now, on this backend's device, and keep it for its runs: e.g. at a
        ZeroGPU Space's startup (``on_zerogpu(..., preload=[model])``), so that every GPU
        worker forked later starts with it instead of loading it within its GPU lease.
        ``bundled:shapes`` names the bundled model. Raises what loading raises."""
        from ...bundled import resolve_model
        from ...control import RunControl
        from ...request import GenerationRequest
        from .run import PipelineRun

        request = GenerationRequest(prompt="", model=resolve_model(model))
        PipelineRun(self, request, RunControl(), RunOptions())._load()

    def unload(self) -> None:
        """Unload every cached pipeline (a running one finishes first)."""
        if self._cache_obj is not None:
            self._cache_obj.evict()

    def models(self) -> Sequence[ModelInfo]:
        if self._listed is not None:
            return [ModelInfo(id=model, defaults=defaults_for(model)) for model in self._listed]
        found = [
            ModelInfo(id=repo, description="Hugging Face cache", defaults=defaults_for(repo))
            for repo in _cached_pipelines()
        ]
        from ...bundled.shapes import model_dir

        if (model_dir() / "model_index.json").is_file():
            found.append(
                ModelInfo(
                    id=str(model_dir()),
                    name="shapes (bundled)",
                    description="a shape in a colour on a background, 64x64: "
                    "'a red circle on a blue background'",
                    defaults=defaults_for(str(model_dir())),
                )
            )
        from .tiny import KINDS, default_tiny_model_dir, is_built

        for kind in KINDS:
            folder = default_tiny_model_dir(kind)
            if is_built(folder):
                found.append(
                    ModelInfo(
                        id=str(folder),
                        name=f"tiny-{kind}",
                        description="random weights, for demos and tests",
                    )
                )
        return found

    def model_info(self, model: str) -> ModelInfo | None:
        """The listed model, or any model this backend can load, with the defaults and limits
        its name and pipeline class call for (see ``model_defaults``)."""
        listed = super().model_info(model)
        if listed is not None and listed.defaults is not None:
            return listed
        defaults = defaults_for(model)
        if listed is None and defaults is None:
            return None
        base = listed or ModelInfo(id=model)
        return base.model_copy(update={"defaults": defaults})

    def capabilities_for(self, model: str | None) -> Capabilities:
        """The model's capabilities, with only the samplers that run on it offered (see
        ``scheduler_choices``)."""
        caps = super().capabilities_for(model)
        from .edit_capabilities import model_edit_flags
        from .scheduler_choices import scheduler_choices

        runnable = scheduler_choices(model)
        model_options = caps.options_model or DiffusersOptions
        caps = caps.with_options(model_options.narrowed(scheduler=runnable))
        flags = model_edit_flags(model)  # img2img, inpainting, instruction editing: by class
        return caps.model_copy(update=flags) if flags else caps

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        options = RunOptions.of(request.options)
        try:
            from .run import PipelineRun
        except ImportError as error:
            yield Failed(
                f"The diffusers backend needs torch, diffusers and transformers ({error}). "
                f"Install them with: {INSTALL_HINT}",
                "backend_error",
            )
            return
        yield from PipelineRun(self, request, control, options).events()

    def _run_began(self) -> None:
        with self._state_lock:
            self._active += 1

    def _run_ended(self) -> None:
        with self._state_lock:
            self._active -= 1


def _cached_pipelines() -> list[str]:
    """Repo ids in the Hugging Face cache that hold a diffusers pipeline (model_index.json)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache yet, or unreadable
        return []
    repos = []
    for repo in sorted(info.repos, key=lambda item: item.repo_id):
        if repo.repo_type != "model":
            continue
        if any(
            Path(file.file_name).name == "model_index.json"
            for revision in repo.revisions
            for file in revision.files
        ):
            repos.append(repo.repo_id)
    return repos
