"""HfInferenceBackend: text-to-image through Hugging Face Inference Providers.

It calls ``huggingface_hub``'s ``text_to_image`` (the ``[inference]`` extra), which reports no
denoising steps, so the backend declares ``step_events=False`` and yields ``Status`` events
while it waits: generating, the model loading at the provider (with its estimate), a rate limit
passing. Models are the curated catalogue or the Hub's live list (``listing``), each with its
own defaults; the provider is chosen per model in the settings (Hugging Face's routing by
default); provider-specific parameters travel in the request's ``options.parameters``.

Importing this module imports no HTTP client: huggingface_hub loads when a run or a listing
starts (its small ``constants`` module is read by ``availability``).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ...backend import USABLE, Availability, Backend, Capabilities, ModelInfo
from ...events import Failed
from .listing import ModelListing, offline
from .settings import InferenceSettings, SettingsError, load_settings
from .tokens import TOKEN_HELP, token_source

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest

INSTALL_HINT = "pip install 'gradio-diffusion-preview[inference]'"
ROUTER = "https://router.huggingface.co"
RESERVED_PARAMETERS = frozenset(
    {
        "inputs",
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "size",
        "image_size",
        "num_inference_steps",
        "steps",
        "guidance_scale",
        "guidance",
        "seed",
        "model",
        "num_images",
        "num_outputs",
        "n",
        "batch_size",
        "image",
        "images",
        "image_url",
        "image_urls",
        "input_image",
        "input_images",
        "reference_images",
        "strength",
        "prompt_strength",
        "target_size",
        "mask",
        "mask_url",
    }
)
"""Names a request may not send as provider parameters: they would bypass validation (the size,
the steps, the number of images billed, the input image and its strength) or the seed."""
MAX_PARAMETERS = 16
MAX_PARAMETER_TEXT = 1000


class HfInferenceBackend(Backend):
    """Hugging Face Inference Providers (FLUX, Stable Diffusion 3.5, SDXL, ...), remotely."""

    id = "hf-inference"
    display_name = "Hugging Face Inference"
    location = "remote"
    capabilities = Capabilities(
        step_events=False,
        step_previews=False,
        negative_prompt=True,
        seed=True,
        guidance=True,
        guidance_range=(0.0, 20.0),
        default_guidance=3.5,
        size_multiple=8,
        min_size=256,
        max_size=2048,
        default_size=(1024, 1024),
        steps_range=(1, 100),
        default_steps=28,
        max_batch=4,
        cancel=True,
        finish_early=False,
        any_model=False,
        image_to_image=True,
        instruction_editing=True,
        options={
            "parameters": "provider-specific parameters sent with the request: a JSON object "
            'of names to strings, numbers or booleans, e.g. {"scheduler": '
            '"EulerAncestralDiscreteScheduler"}; the standard fields (size, steps, guidance, '
            "seed) cannot be set here.",
        },
    )

    def __init__(
        self,
        settings: InferenceSettings | None = None,
        *,
        token: str | None = None,
        id: str | None = None,
        config_error: str | None = None,
        **fields: Any,
    ) -> None:
        """
        Parameters:
            settings: the backend's settings; or give their fields as keyword arguments
                (``provider="fal-ai"``, ``models=[...]``, ``timeout=120``, ...).
            token: a Hugging Face token; by default huggingface_hub's discovery (``HF_TOKEN``,
                ``hf auth login``). It is sent only to Hugging Face (or ``router_url``) and never
                printed.
            id: the backend's id, to register a second one beside the built-in
                ``hf-inference`` (``get_registry().add_backends(...)``).
            config_error: why the configuration could not be read (the backend is then listed
                as not configured, with this message).
        """
        if settings is None:
            try:
                settings = InferenceSettings(**fields)
            except ValueError as error:
                raise SettingsError(f"HfInferenceBackend settings: {error}") from None
        elif fields:
            raise TypeError("give either settings or their fields, not both")
        if id is not None:
            self.id = id
        self.settings = settings
        self.token = SecretStr(token) if token else None
        self.config_error = config_error
        self.listing = ModelListing(settings, self.token)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> HfInferenceBackend:
        """The backend as the environment configures it (see ``settings``); a configuration
        error leaves it registered but not configured, saying what to fix."""
        try:
            return cls(load_settings(os.environ if environ is None else environ))
        except SettingsError as error:
            return cls(InferenceSettings(live_models=False), config_error=str(error))

    def __repr__(self) -> str:
        return f"<HfInferenceBackend id={self.id!r} provider={self.settings.provider!r}>"

    def availability(self) -> Availability:
        if self.config_error:
            return Availability(state="not_configured", message=self.config_error)
        if importlib.util.find_spec("huggingface_hub") is None:
            return Availability(
                state="not_configured",
                message=f"Hugging Face Inference needs huggingface_hub: {INSTALL_HINT}",
            )
        if offline():
            return Availability(
                state="offline",
                message="Hugging Face Inference is off: huggingface_hub is in offline mode "
                "(HF_HUB_OFFLINE is set on the server). Fix: unset HF_HUB_OFFLINE (and "
                "TRANSFORMERS_OFFLINE) to use it.",
            )
        if self.settings.router_url is None and token_source(self.token) is None:
            return Availability(
                state="needs_token",
                message=f"Hugging Face Inference needs a token. Fix: {TOKEN_HELP}.",
            )
        return USABLE

    def models(self) -> Sequence[ModelInfo]:
        return self.listing.models()

    def capabilities_for(self, model: str | None) -> Capabilities:
        """The backend's capabilities with the model's own; only a model whose entry says so
        takes an input image (the editing models of the catalogue, or ``defaults`` with
        ``image_to_image``/``instruction_editing``): Inference serves most models for one
        task, text-to-image or image-to-image."""
        caps = super().capabilities_for(model)
        info = self.model_info(model) if model else None
        defaults = info.defaults if info else None
        edits = bool(defaults and (defaults.image_to_image or defaults.instruction_editing))
        return caps.model_copy(
            update={
                "image_to_image": bool(defaults and defaults.image_to_image),
                "inpainting": False,
                "instruction_editing": bool(defaults and defaults.instruction_editing),
                "text_to_image": not edits,  # served for one task: an editor edits only
            }
        )

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        problem = parameter_problem(
            request.options.get("parameters", {}), self.settings.allowed_parameters
        )
        if problem:
            yield Failed(
                f"Backend '{self.id}' cannot send options.parameters: {problem}.",
                "invalid_request",
            )
            return
        if importlib.util.find_spec("huggingface_hub") is None:
            yield Failed(f"Hugging Face Inference needs huggingface_hub: {INSTALL_HINT}")
            return
        from .run import InferenceRun

        yield from InferenceRun(self, request, control).events()

    def describe(self) -> dict:
        data = super().describe()
        source = token_source(self.token)
        settings = self.settings
        data["endpoint"] = {
            "url": settings.router_url or ROUTER,
            "token": f"set (from {source})" if source else "not set",
        }
        data["inference"] = {
            "provider": "hf-inference" if settings.router_url else settings.provider,
            "models": self.listing.source,
            "timeout": settings.timeout,
            "max_wait": settings.max_wait,
            "bill_to": settings.bill_to,
        }
        return data


def parameter_problem(parameters: Any, allowed: list[str] | None) -> str | None:
    """Why a request's provider parameters cannot be sent, or None when they can."""
    if not isinstance(parameters, dict):
        return f"it must be a JSON object of names to values, not {type(parameters).__name__}"
    if len(parameters) > MAX_PARAMETERS:
        return f"at most {MAX_PARAMETERS} parameters, got {len(parameters)}"
    for name, value in parameters.items():
        if name in RESERVED_PARAMETERS:
            return f"'{name}' is a standard field: set it on the request itself (it is validated)"
        if allowed is not None and name not in allowed:
            listed = ", ".join(allowed) or "none"
            return f"'{name}' is not allowed on this server (allowed: {listed})"
        if isinstance(value, bool | int):
            continue
        if isinstance(value, float) and math.isfinite(value):
            continue
        if isinstance(value, str) and len(value) <= MAX_PARAMETER_TEXT:
            continue
        return (
            f"'{name}' must be a string (up to {MAX_PARAMETER_TEXT} characters), a finite "
            f"number or a boolean, not {value!r:.60}"
        )
    return None
