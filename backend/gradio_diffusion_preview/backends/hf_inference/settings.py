"""The hf-inference backend's settings: which models, which provider, which deadlines.

Settings come from code (``HfInferenceBackend(settings=...)`` or keyword arguments), from a
TOML/JSON file named by ``DIFFUSION_PREVIEW_HF_CONFIG``, and from single environment variables
``DIFFUSION_PREVIEW_HF_<FIELD>`` (``PROVIDER``, ``MODELS`` as comma-separated repo ids,
``TIMEOUT``, ``MAX_WAIT``, ``ROUTER_URL``, ``HUB_URL``, ``BILL_TO``, ``LIVE_MODELS``), which win
over the file. The token is never a setting: it comes from code or from huggingface_hub's own
discovery (see ``tokens``), so no file or printout holds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...backend import ModelDefaults, ModelInfo

CONFIG_FILE_VARIABLE = "DIFFUSION_PREVIEW_HF_CONFIG"
ENV_PREFIX = "DIFFUSION_PREVIEW_HF_"
HF_ROUTE = "hf-inference"
TEXT_TO_IMAGE_PROVIDERS = (
    "hf-inference",
    "fal-ai",
    "nscale",
    "replicate",
    "together",
    "wavespeed",
    "zai-org",
)
"""The providers huggingface_hub 2.4 can call for text-to-image (a test keeps this in step
with the installed library); ``auto`` lets Hugging Face pick among them."""
IMAGE_TO_IMAGE_PROVIDERS = ("hf-inference", "fal-ai", "replicate", "together", "wavespeed")
"""The providers huggingface_hub 2.4 can call for image-to-image (``InferenceClient.
image_to_image``; a test keeps this in step with the installed library)."""
PROVIDERS = (*TEXT_TO_IMAGE_PROVIDERS,)
"""Every provider a setting may name: those of text-to-image (image-to-image's are among them)."""

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
Scalar = str | int | float | bool


class SettingsError(ValueError):
    """The backend's configuration is wrong; ``str()`` names the field and the fix."""


def _check_provider(value: str | None) -> str | None:
    if value is None or value == "auto" or value in PROVIDERS:
        return value
    raise ValueError(
        f"unknown provider {value!r}; use 'auto' (Hugging Face picks) or one of: "
        f"{', '.join(PROVIDERS)}"
    )


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) address")
    return value


class HfModel(BaseModel):
    """One model the backend offers, as configured (or from the curated catalogue)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="The Hugging Face repo id, e.g. black-forest-labs/FLUX.1-schnell.")
    name: str | None = None
    description: str = ""
    provider: str | None = None
    """The provider that serves it; None uses the backend's (``auto`` by default)."""
    url: str | None = None
    """A dedicated Inference Endpoint (or any server speaking the hf-inference protocol) that
    serves this model; requests are POSTed to it as is."""
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    """Provider-specific parameters sent with every request for this model; they win over the
    request's own ``options.parameters``."""
    defaults: ModelDefaults | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _REPO_ID.match(value):
            raise ValueError(f"{value!r} is not a repo id like 'org/name'")
        return value

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        return _check_provider(value)

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        return _check_url(value)

    def info(self, description: str | None = None) -> ModelInfo:
        """The model as the registry, the CLI and the demo see it."""
        return ModelInfo(
            id=self.id,
            name=self.name or self.id.split("/", 1)[1],
            description=self.description if description is None else description,
            defaults=self.defaults,
        )


class InferenceSettings(BaseModel):
    """Everything about the backend but its token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = "auto"
    """The provider for models that name none: ``auto`` (Hugging Face's routing, in the order
    of your preferences at hf.co/settings/inference-providers) or a provider's name."""
    models: list[HfModel] | None = None
    """The models offered; None offers the curated catalogue (``catalogue.CATALOGUE``)."""
    live_models: bool | None = None
    """List the models the Hub says are served (cached for ``live_seconds``), with the
    configured entries giving names and defaults. Default: on for the catalogue, off when
    ``models`` is configured."""
    live_limit: int = Field(40, ge=1, le=500)
    live_seconds: float = Field(600.0, gt=0)
    list_timeout: float = Field(8.0, gt=0)
    """The longest a live listing may take before the configured list is used instead."""
    timeout: float = Field(300.0, gt=0)
    """The longest one run may take, waits included, on our own clock (seconds)."""
    max_wait: float = Field(120.0, ge=0)
    """The most a run waits, in all, for a model to load or a rate limit to pass; a longer
    wait fails at once with ``retry_after``."""
    router_url: str | None = None
    """Send requests to this router-compatible address instead of Hugging Face's router:
    ``{router_url}/hf-inference/models/<id>`` (a gateway, a proxy, a test server)."""
    hub_url: str | None = None
    """The Hub API used for live listings; None uses huggingface_hub's (``HF_ENDPOINT``)."""
    bill_to: str | None = None
    """An organisation to bill (``X-HF-Bill-To``), when the token's user belongs to it."""
    allowed_parameters: list[str] | None = None
    """Which provider-specific parameters a request may send in ``options.parameters``:
    None allows any name but the standard ones, ``[]`` none."""

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return _check_provider(value) or "auto"

    @field_validator("router_url", "hub_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        return _check_url(value)

    @model_validator(mode="after")
    def _router_takes_the_hf_route(self) -> InferenceSettings:
        if self.router_url is None:
            return self
        others = [m.id for m in self.models or () if m.provider not in (None, "auto", HF_ROUTE)]
        if self.provider not in ("auto", HF_ROUTE) or others:
            raise ValueError(
                f"router_url sends every request by the {HF_ROUTE} route, so providers other "
                f"than auto or {HF_ROUTE} cannot be used with it "
                f"({', '.join(others) or 'provider=' + self.provider})"
            )
        return self

    @property
    def lists_live(self) -> bool:
        return self.models is None if self.live_models is None else self.live_models


def load_settings(
    environ: Mapping[str, str] | None = None, base: dict[str, Any] | None = None
) -> InferenceSettings:
    """Settings from ``base`` (code), then the ``DIFFUSION_PREVIEW_HF_CONFIG`` file, then
    single ``DIFFUSION_PREVIEW_HF_*`` variables; raises ``SettingsError`` naming the fix."""
    environ = os.environ if environ is None else environ
    fields: dict[str, Any] = dict(base or {})
    path = environ.get(CONFIG_FILE_VARIABLE)
    if path:
        fields.update(_read_file(path))
    for name in InferenceSettings.model_fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value.strip():
            fields[name] = _models_from_ids(value) if name == "models" else value.strip()
    where = f"{CONFIG_FILE_VARIABLE}={path}" if path else "the hf-inference settings"
    try:
        return InferenceSettings(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise SettingsError(
            f"In {where}: {field}: {first['msg']}. Fix: see docs/backends/hf-inference.md "
            "for the settings."
        ) from None


def _models_from_ids(text: str) -> list[dict[str, Any]]:
    """``DIFFUSION_PREVIEW_HF_MODELS=a/b,c/d``: catalogue entries keep their defaults."""
    from .catalogue import catalogue_entry

    models = []
    for model_id in (part.strip() for part in text.split(",")):
        if model_id:
            known = catalogue_entry(model_id)
            models.append(known.model_dump() if known else {"id": model_id})
    return models


def _read_file(path: str) -> dict[str, Any]:
    from ...endpoints import read_config_file  # the same reader as the endpoints file

    data = read_config_file(
        path,
        variable=CONFIG_FILE_VARIABLE,
        what="hf-inference settings file",
        docs="docs/backends/hf-inference.md",
        error=SettingsError,
    )
    if not isinstance(data, dict):
        raise SettingsError(f"The settings file '{path}' must hold a table of settings.")
    return data
