"""The value of a DiffusionPreview as it travels: ``PreviewData``, the wire form the browser and
API clients receive (final images as downloadable files). It is the component's pydantic data
model, so the API schema derives from it. It shares its fields with ``run_state.RunState``, the
Python-side state that ``stream`` yields (final images as PIL images).
"""

from __future__ import annotations

from gradio.data_classes import FileData, GradioModel
from pydantic import Field

from .run_state import GenerationParams, RunFields, RunState, RunStatus

__all__ = ["GenerationParams", "PreviewData", "RunFields", "RunState", "RunStatus"]


class PreviewData(GradioModel, RunFields):
    """A run's state as sent to the browser and API clients."""

    images: list[FileData] = Field(
        default_factory=list, description="The final images, full resolution, downloadable."
    )
    input_image: FileData | None = Field(
        None,
        description="An edit's input picture (image-to-image, inpainting, instruction editing), "
        "at the output's size, as a file the app serves, from the run's first state to its "
        "last: the widget shows it as the first frame and beside the result (before/after). "
        "Null for text-to-image.",
    )
    infotexts: list[str] = Field(
        default_factory=list,
        description="One line block per final image in AUTOMATIC1111's infotext format (prompt, "
        "'Negative prompt: ...', 'Steps: N, Sampler: ..., CFG scale: G, Seed: S, Size: WxH, "
        "Model: ...'), as written into each PNG's 'parameters' text chunk.",
    )
