"""Your loaded pipeline as a backend: stream the pipeline an app already holds, no copy, no save.

    pipe = StableDiffusionPipeline.from_pretrained(...)      # module level, as Spaces do
    pipe.load_lora_weights(...)                               # the author's own settings
    previews = PipelineBackend(pipe, name="my-model")
    def generate(prompt):
        yield from stream(previews, prompt=prompt)            # or stream(pipe, ...)

The backend runs the very object the app loaded (its weights, scheduler, LoRA, device and
dtype), so nothing is loaded twice. A run holds the pipeline's lock, so one run at a time uses
it. The scheduler a run uses is the pipeline's own at the run's start (``scheduler="default"``)
or one built from its config; the pipeline's scheduler is put back afterwards.

Beyond the request's fields, a run passes the pipeline's own call arguments through:

- ``call_args`` (constructor): the author's fixed arguments (``clip_skip``, ``eta``,
  ``guidance_rescale``, ``cross_attention_kwargs``...), checked against the pipeline's
  ``__call__`` signature at once.
- ``options={"pipeline_args": {...}}`` per request, checked the same way (under a ``Policy``,
  the catalogue entry decides whether visitors may set it at all).
- ``options={"adapters": {"name": weight}}`` per request: the loaded LoRA adapters to use
  and their weights (``pipe.set_adapters``, which needs peft), put back after the run.

Arguments the run itself controls (prompt, steps, size, seeds, the step callback...) are
refused there, with the request field to use instead.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ...backend import Capabilities, ModelInfo
from ...events import Failed
from .backend import DiffusersBackend, RunOptions
from .options import PipelineOptions

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest

RUN_CONTROLLED = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "width": "width",
    "height": "height",
    "num_images_per_prompt": "num_images",
    "generator": "seed",
    "output_type": None,
    "return_dict": None,
    "callback_on_step_end": None,
    "callback_on_step_end_tensor_inputs": None,
    "callback": None,
    "callback_steps": None,
    "image": "init_image",
    "mask_image": "mask_image",
    "strength": "strength",
}
"""Call arguments a run sets itself, with the request field that sets them (None: none)."""


class PipelineArgumentError(ValueError):
    """A pass-through call argument the pipeline does not take, or one the run controls."""


def check_call_args(pipe: Any, args: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``args`` if every name is a parameter of ``pipe.__call__`` the run does not control;
    otherwise ``PipelineArgumentError`` naming the argument and the fix."""
    if not isinstance(args, Mapping):
        raise PipelineArgumentError(
            f"{where} must be a dict of {type(pipe).__name__} call arguments, got {args!r}"
        )
    accepts = inspect.signature(pipe.__call__).parameters
    for name in args:
        if name in RUN_CONTROLLED:
            field = RUN_CONTROLLED[name]
            fix = f"set the request's '{field}' instead" if field else "the run sets it itself"
            raise PipelineArgumentError(f"{where} cannot set '{name}': {fix}")
        if name not in accepts:
            known = ", ".join(sorted(set(accepts) - set(RUN_CONTROLLED) - {"kwargs"}))
            raise PipelineArgumentError(
                f"{type(pipe).__name__} takes no argument '{name}' ({where}); it takes: {known}"
            )
    return dict(args)


class PipelineBackend(DiffusersBackend):
    """Runs one diffusers pipeline the app has already loaded, with step previews."""

    id = "pipeline"
    display_name = "Your pipeline"
    capabilities = DiffusersBackend.capabilities.model_copy(
        update={"any_model": False}
    ).with_options(PipelineOptions)

    def __init__(
        self,
        pipe: Any,
        *,
        name: str | None = None,
        description: str = "",
        call_args: Mapping[str, Any] | None = None,
        previewer: str | None = None,
        preview_max_side: int = 512,
        torch_threads: int | str | None = "keep",
    ) -> None:
        """
        Parameters:
            pipe: a loaded diffusers text-to-image pipeline with a step callback
                (``callback_on_step_end``, or the older ``callback`` with a VAE, as PixArt's);
                a video pipeline, or one the diffusers backend refuses, is refused here.
            name: the model name runs show (default: the pipeline's ``name_or_path``, else
                its class name).
            description: a line shown with the model in listings.
            call_args: call arguments every run passes (``clip_skip``, ``eta``...), checked
                against the pipeline's signature now.
            previewer: the default previewer (see ``DiffusersBackend``).
            preview_max_side: the longest side of a preview, in pixels.
            torch_threads: "keep" (default: the app's own torch threads are left alone), a
                number, or "auto" (see ``DiffusersBackend``).
        """
        refusal = _refusal(pipe)
        if refusal:
            raise TypeError(refusal)
        super().__init__(
            previewer=previewer, preview_max_side=preview_max_side, torch_threads=torch_threads
        )
        self.pipe = pipe
        self.name = name or _pipeline_name(pipe)
        self.description = description
        self.call_args = check_call_args(pipe, call_args or {}, "call_args")
        self._entry = None
        self._entry_lock = threading.Lock()

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=self.name, name=self.name, description=self.description)]

    def model_info(self, model: str) -> ModelInfo | None:
        return self.models()[0] if model == self.name else None

    def capabilities_for(self, model: str | None) -> Capabilities:
        """The samplers offered are those that run with the pipeline's own scheduler."""
        from .scheduler_choices import choices_for_config

        config = dict(getattr(self.pipe.scheduler, "config", None) or {})
        config.setdefault("_class_name", type(self.pipe.scheduler).__name__)
        from .edit_capabilities import edit_flags

        runnable = choices_for_config(config)
        caps = self.capabilities.with_options(PipelineOptions.narrowed(scheduler=runnable))
        return caps.model_copy(update=edit_flags(type(self.pipe).__name__))

    def loaded_models(self) -> list[tuple[str, str, str]]:
        entry = self._entry
        return [] if entry is None else [entry.key]

    def unload(self) -> None:
        """Nothing to unload: the pipeline is the app's."""

    def entry(self):
        """The pipeline with what runs need to know about it (made once, on the first run)."""
        with self._entry_lock:
            if self._entry is None:
                from .loading import LoadedPipeline

                self._entry = LoadedPipeline.of(self.pipe, self.name)
            return self._entry

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        options = request.options  # checked by the central validation (PipelineOptions)
        try:
            extra = check_call_args(self.pipe, options.get("pipeline_args") or {}, "")
            adapters = _adapter_weights(self.pipe, options.get("adapters"))
        except (OptionError, PipelineArgumentError) as error:
            text = str(error).replace(" ()", "")
            yield Failed(f"Backend 'pipeline' cannot run this request: {text}.", "invalid_request")
            return
        parsed = RunOptions.of(options)
        from .app_pipeline_run import AppPipelineRun

        yield from AppPipelineRun(
            self, request, control, parsed, {**self.call_args, **extra}, adapters
        ).events()


def _parameters(pipe: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(pipe).parameters)
    except (TypeError, ValueError):
        return frozenset()


def _refusal(pipe: Any) -> str | None:
    """Why ``pipe`` cannot be run with step previews, or None: the diffusers backend's own
    checks on a loaded model (a step callback, an older one only where finishing early can be
    decoded, no video), so an app's pipeline is taken or refused exactly as a loaded one."""
    from .loading import has_step_callback, legacy_refusal

    name = type(pipe).__name__
    parameters = _parameters(pipe)
    if not callable(pipe) or not has_step_callback(parameters):
        return (
            f"PipelineBackend needs a diffusers text-to-image pipeline with "
            f"callback_on_step_end (or the older callback and callback_steps), got {name}; "
            "pass the pipeline object (e.g. StableDiffusionPipeline.from_pretrained(...))."
        )
    why_not = legacy_refusal(pipe, parameters)
    if why_not:
        return (
            f"PipelineBackend cannot run {name}: it has no callback_on_step_end, only the older "
            f"callback, and {why_not}. Use a text-to-image pipeline with a VAE (Stable "
            "Diffusion 1.x/2.x, SDXL, SD3, Flux, PixArt...)."
        )
    if "num_frames" in parameters:
        return (
            f"PipelineBackend cannot run {name}, a video pipeline: it makes still images. "
            "Pass a text-to-image pipeline."
        )
    return None


def _pipeline_name(pipe: Any) -> str:
    config = getattr(pipe, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(pipe, "name_or_path", None)
    return str(name) if name else type(pipe).__name__


class OptionError(ValueError):
    """An option's value that this pipeline cannot use (an adapter it has not loaded)."""


def _adapter_weights(pipe: Any, adapters: Any) -> dict[str, float] | None:
    """The ``adapters`` option (a dict of names to weights, typed by ``PipelineOptions``)
    checked against the pipeline: every name a loaded adapter."""
    if adapters is None:
        return None
    getter = getattr(pipe, "get_list_adapters", None)
    try:
        loaded = sorted({name for names in getter().values() for name in names}) if getter else []
    except Exception:  # no peft: nothing can have been loaded as an adapter
        loaded = []
    if not loaded:
        raise OptionError(
            f"option 'adapters' needs LoRA adapters loaded with pipe.load_lora_weights(..., "
            f"adapter_name=...) (which needs peft); {type(pipe).__name__} has none"
        )
    unknown = sorted(set(adapters) - set(loaded))
    if unknown:
        raise OptionError(
            f"adapter '{unknown[0]}' is not loaded; the pipeline's adapters are: "
            + ", ".join(loaded)
        )
    return {str(name): float(weight) for name, weight in adapters.items()}


_BACKENDS: weakref.WeakKeyDictionary[Any, PipelineBackend] = weakref.WeakKeyDictionary()
_BACKENDS_LOCK = threading.Lock()


def is_pipeline(value: Any) -> bool:
    """True for a loaded diffusers pipeline (judged without importing diffusers)."""
    return any(
        cls.__name__ == "DiffusionPipeline" and cls.__module__.startswith("diffusers")
        for cls in type(value).__mro__
    )


def backend_for(pipe: Any) -> PipelineBackend:
    """The ``PipelineBackend`` of ``pipe``: one per pipeline object (made on first use), so
    ``stream(pipe, ...)`` from many events shares one lock and one description of it."""
    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(pipe)
        if backend is None:
            backend = _BACKENDS[pipe] = PipelineBackend(pipe)
        return backend
