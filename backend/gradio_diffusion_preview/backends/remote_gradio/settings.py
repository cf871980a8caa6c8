"""The settings of one remote Gradio endpoint: its ``Endpoint.options``, checked without a network.

Every setting is optional; what is left out is detected from the remote app's API description
(``client.view_api()``) on first use:

- ``api_name``: the endpoint to call, e.g. ``"/generate"``. Default: the app's only endpoint with a
  ``DiffusionPreview`` output, else its only endpoint with an image or gallery output.
- ``mode``: ``"preview"`` (the output is a ``DiffusionPreview``: every step is relayed), ``"image"``
  (the output is an image or gallery: status while it runs, then the image) or ``"auto"``.
- ``inputs``: which remote parameter each request field goes to, e.g. ``{"prompt": "text",
  "steps": "num_inference_steps"}``; ``null`` sends a field nowhere. Fields: see ``FIELDS``.
- ``fixed``: remote parameters always sent with the same value, e.g.
  ``{"backend_id": "diffusers"}``.
- ``output``: the output holding the image, by index or label. Default: the first
  ``DiffusionPreview``, image or gallery output.
- ``capabilities``: overrides of the detected ``Capabilities`` (limits, defaults), e.g.
  ``{"max_size": 1024, "default_steps": 4}``.
- ``preview_max_side``: the longest side of a relayed preview, in pixels (default 512).
- ``heartbeat_seconds``: how often the remote app writes to an idle event stream (Gradio's
  ``GRADIO_HEARTBEAT_INTERVAL``, default 15); set it only for an app that changed it.
- ``read_timeout``: seconds without a byte from the remote before the connection counts as dead;
  above the remote's heartbeat (default 60).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ...backend import Capabilities
from ...endpoints import Endpoint, EndpointConfigError

RequestField = Literal[
    "prompt",
    "negative_prompt",
    "model",
    "steps",
    "guidance",
    "seed",
    "width",
    "height",
    "num_images",
    "init_image",
    "strength",
]
FIELDS: tuple[str, ...] = get_args(RequestField)
"""The request fields that can be sent to a remote parameter."""
HEARTBEAT_SECONDS = 15.0
"""How often a Gradio server writes to an idle event stream."""


class GradioSettings(BaseModel):
    """``Endpoint.options`` of a ``kind="gradio"`` endpoint (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_name: str | None = None
    mode: Literal["auto", "preview", "image"] = "auto"
    inputs: dict[RequestField, str | None] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)
    output: int | str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)
    preview_max_side: int = Field(512, ge=16, le=4096)
    heartbeat_seconds: float = Field(HEARTBEAT_SECONDS, gt=0)
    read_timeout: float = 60.0

    @field_validator("api_name")
    @classmethod
    def _leading_slash(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return "/" + value.strip().lstrip("/")

    @field_validator("read_timeout")
    @classmethod
    def _above_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("heartbeat_seconds", HEARTBEAT_SECONDS)
        if value <= heartbeat:
            raise ValueError(
                f"{value:g} s is not above the remote's {heartbeat:g}-second heartbeat, so a "
                "silent wait in its queue would count as a dead connection; give more seconds"
            )
        return value

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(Capabilities.model_fields))
        if unknown:
            raise ValueError(
                f"unknown capability '{unknown[0]}'; use: {', '.join(Capabilities.model_fields)}"
            )
        return value


def parse_settings(endpoint: Endpoint) -> GradioSettings:
    """The endpoint's options as ``GradioSettings``; raises ``EndpointConfigError`` naming the
    endpoint, the option and the fix."""
    if endpoint.kind != "gradio":
        raise EndpointConfigError(
            f"Endpoint '{endpoint.id}' is of kind '{endpoint.kind}', not 'gradio'. Fix: give it "
            'to the backend of its kind, or set kind = "gradio".'
        )
    try:
        return GradioSettings(**endpoint.options)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        raise EndpointConfigError(
            f"Endpoint '{endpoint.id}': options.{where}: {first['msg']}. Fix: see "
            "docs/backends/remote-gradio.md for the options of a Gradio endpoint."
        ) from None
