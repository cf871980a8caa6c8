"""The diffusers backend's typed request options, checked centrally before a run.

``scheduler`` takes AUTOMATIC1111's sampler names ("Euler a", "DPM++ 2M Karras"); the names
it took before (``euler_a``, ``dpm++_karras``) are still accepted as aliases. A model whose
scheduler runs only some samplers gets this class narrowed to them (``scheduler_choices``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator

from ...typed_options import Options
from .schedulers import ALIASES, SCHEDULERS

SchedulerName = Literal[tuple(SCHEDULERS)]  # type: ignore[valid-type]
PreviewerName = Literal["latent_rgb", "auto", "taesd", "none"]
PREVIEWER_LABELS = {
    "latent_rgb": "Latent RGB (fast, blurry)",
    "auto": "Automatic (tiny decoder where available)",
    "taesd": "Tiny decoder (TAESD, sharp)",
    "none": "None (no previews)",
}
TaesdSource = Annotated[str, StringConstraints(pattern=r"^taesd:\S.*$")]
DeviceName = Annotated[str, StringConstraints(pattern=r"(?i)^(auto|cpu|cuda(:\d+)?|mps)$")]


class DiffusersOptions(Options):
    """Request options of the diffusers backend (all optional)."""

    aliases: ClassVar[dict[str, dict[str, str]]] = {
        "scheduler": ALIASES,
        "dtype": {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"},
    }

    scheduler: SchedulerName | None = Field(  # type: ignore[valid-type]
        None,
        description="Sampler: " + ", ".join(SCHEDULERS) + " (AUTOMATIC1111's names; "
        "flow-matching models such as SD3 and Flux: Default or Euler). Default: the model's own.",
    )
    previewer: PreviewerName | TaesdSource | None = Field(
        None,
        description="Step previews: latent_rgb (a per-family latent-to-RGB projection; "
        "the default on the CPU), taesd (the family's tiny decoder), taesd:<folder or repo "
        "id>, auto (taesd when available, else latent_rgb; the default on a GPU), none.",
        json_schema_extra={"labels": PREVIEWER_LABELS},
    )
    device: DeviceName | None = Field(
        None, description="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] | None = Field(
        None,
        description="auto (float16/bfloat16 on a GPU, float32 on the CPU), float32, "
        "float16 or bfloat16.",
    )


class PipelineOptions(DiffusersOptions):
    """Request options of a ``PipelineBackend`` (one pipeline the app has loaded)."""

    scheduler: SchedulerName | None = Field(  # type: ignore[valid-type]
        None,
        description="Sampler: Default (the pipeline's own), or one built from its config: "
        + ", ".join(SCHEDULERS),
    )
    device: str | None = Field(
        None, description="auto only: the pipeline runs where the app put it."
    )
    dtype: str | None = Field(None, description="auto only: the pipeline keeps the app's dtype.")
    pipeline_args: dict[str, Any] | None = Field(
        None,
        description="The pipeline's own call arguments, e.g. {'clip_skip': 2}; checked against "
        "its signature.",
    )
    adapters: dict[str, float] | None = Field(
        None, description="Loaded LoRA adapters to use, with weights: {'name': 0.8} (needs peft)."
    )

    @field_validator("device", "dtype")
    @classmethod
    def _stays_put(cls, value: str | None, info: Any) -> str | None:
        if value not in (None, "auto"):
            raise ValueError(
                f"option '{info.field_name}' cannot move the app's pipeline; leave it unset "
                "(the pipeline runs where the app put it)"
            )
        return value
