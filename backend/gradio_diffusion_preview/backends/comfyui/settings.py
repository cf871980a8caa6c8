"""The ComfyUI endpoint's own settings, from ``Endpoint.options`` (server configuration only).

- ``workflow``: a file saved with ComfyUI's "Export (API)"; by default the built-in one.
- ``inputs``: with ``workflow``, which node input is what: ``{"prompt": "6.text", ...}``.
- ``output_node``: with ``workflow``, the node whose images are the result (by default the last
  node that saved images).
- ``preview_method``: asked of ComfyUI with each prompt: ``auto`` (default), ``latent2rgb``,
  ``taesd`` or ``none``.
- ``sampler``, ``scheduler``: the defaults for requests that name none (``euler``, ``normal``).
- ``filename_prefix``: the built-in workflow's SaveImage prefix (``gradio-diffusion-preview``).
- ``preview_max_side``: the longest side of a preview, in pixels (512).
- ``model_defaults``: per checkpoint, ``ModelDefaults`` fields, e.g.
  ``{"sdxl.safetensors": {"default_size": [1024, 1024]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ...backend import ModelDefaults
from .workflow import UserWorkflow, WorkflowError

PREVIEW_METHODS = ("auto", "latent2rgb", "taesd", "none")
OPTIONS = (
    "workflow",
    "inputs",
    "output_node",
    "preview_method",
    "sampler",
    "scheduler",
    "filename_prefix",
    "preview_max_side",
    "model_defaults",
)


class SettingsError(ValueError):
    """An endpoint option is wrong; ``str()`` names it and the fix."""


@dataclass(frozen=True)
class Settings:
    workflow: UserWorkflow | None = None
    output_node: str | None = None
    preview_method: str = "auto"
    sampler: str = "euler"
    scheduler: str = "normal"
    filename_prefix: str = "gradio-diffusion-preview"
    preview_max_side: int = 512
    model_defaults: dict[str, ModelDefaults] = field(default_factory=dict)

    @property
    def previews(self) -> bool:
        return self.preview_method != "none"

    @classmethod
    def from_options(cls, endpoint_id: str, options: dict[str, Any]) -> Settings:
        """Read and check the options; raises ``SettingsError`` naming the first problem."""
        where = f"ComfyUI endpoint '{endpoint_id}'"
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise SettingsError(
                f"The {where} has an unknown option '{unknown[0]}'. Fix: use only "
                f"{', '.join(OPTIONS)} (see docs/backends/comfyui.md)."
            )
        fields: dict[str, Any] = {}
        for name in ("sampler", "scheduler", "filename_prefix", "output_node"):
            if name in options:
                value = options[name]
                if not isinstance(value, str) or not value.strip():
                    raise SettingsError(f"The {where}'s option '{name}' must be a name.")
                fields[name] = value.strip()
        if "preview_method" in options:
            method = options["preview_method"]
            if method not in PREVIEW_METHODS:
                raise SettingsError(
                    f"The {where}'s preview_method is {method!r}. Fix: use one of "
                    f"{', '.join(PREVIEW_METHODS)}."
                )
            fields["preview_method"] = method
        if "preview_max_side" in options:
            side = options["preview_max_side"]
            if isinstance(side, bool) or not isinstance(side, int) or not 16 <= side <= 2048:
                raise SettingsError(
                    f"The {where}'s preview_max_side is {side!r}. Fix: a number of pixels "
                    "from 16 to 2048."
                )
            fields["preview_max_side"] = side
        fields["model_defaults"] = _model_defaults(where, options.get("model_defaults") or {})
        if "workflow" in options:
            try:
                fields["workflow"] = UserWorkflow.load(options["workflow"], options.get("inputs"))
            except WorkflowError as error:
                raise SettingsError(f"{where}: {error}") from None
            if "output_node" in fields and fields["output_node"] not in fields["workflow"].graph:
                raise SettingsError(
                    f"The {where}'s output_node '{fields['output_node']}' is not a node of its "
                    "workflow. Fix: name the node that saves the final image."
                )
        elif "inputs" in options or "output_node" in options:
            raise SettingsError(
                f"The {where} has 'inputs' or 'output_node' but no 'workflow'. Fix: add the "
                "workflow file they belong to, or remove them to use the built-in workflow."
            )
        return cls(**fields)


def _model_defaults(where: str, raw: Any) -> dict[str, ModelDefaults]:
    if not isinstance(raw, dict):
        raise SettingsError(f"The {where}'s model_defaults must map model names to defaults.")
    result = {}
    for model, values in raw.items():
        try:
            result[str(model)] = ModelDefaults.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            name = ".".join(str(part) for part in first["loc"]) or "defaults"
            raise SettingsError(
                f"The {where}'s model_defaults for '{model}': {name}: {first['msg']}. Fix: use "
                f"the fields {', '.join(ModelDefaults.model_fields)}."
            ) from None
    return result
