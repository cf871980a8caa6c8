"""An edit's input picture as its run shows it: the first frame, and the "before" of the result.

The request's ``init_image`` is already decoded and bounded by validation (``input_image``);
here it is made RGB at the size the run makes (the request's resolved width and height), as the
diffusers backend resizes it for the pipeline (``backends/diffusers/img2img.edit_arguments``), so
the input and the result line up pixel for pixel in the viewer's before/after comparison. The
component writes it once per run into Gradio's cache and serves it like a final image
(``component.DiffusionPreview``): the browser gets a URL of the app's own file, never a path
the visitor chose.
"""

from __future__ import annotations

from typing import Any

import PIL.Image

from .request import GenerationRequest


def shown_input(request: GenerationRequest) -> PIL.Image.Image | None:
    """The request's input picture, RGB, at the run's output size; None for text-to-image."""
    image: Any = request.init_image
    if not isinstance(image, PIL.Image.Image):
        return None
    shown = image if image.mode == "RGB" else image.convert("RGB")
    size = (request.width, request.height)
    if None not in size and shown.size != size:
        shown = shown.resize(size, PIL.Image.Resampling.LANCZOS)
    return shown
