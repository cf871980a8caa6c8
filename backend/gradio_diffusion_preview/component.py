"""DiffusionPreview: a Gradio output component that shows a text-to-image run as it happens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio
import numpy as np
import PIL.Image
from gradio import processing_utils
from gradio.components.base import Component
from gradio.data_classes import FileData
from gradio.events import Dependency, EventListener, Events

from .image_retention import ImageRetention
from .ownership import session_of
from .state import PreviewData, RunState
from .streaming import cancel_run, finish_run

if TYPE_CHECKING:
    from gradio.components import Timer

FinalImage = PIL.Image.Image | np.ndarray | str | Path
ACCEPTED = (
    "a RunState (from gradio_diffusion_preview.stream), a PreviewData, a PIL image, a numpy "
    "array, a path to an image file, a list of those images, or None"
)


class DiffusionPreview(Component):
    """Shows a generation run: a live preview of every denoising step, progress with steps per
    second and ETA, queue position, a Stop button, and the final images to view and download.

    As an output it takes the ``RunState`` values that ``stream`` yields, or simply a final image
    (PIL image, numpy array or path). As an input it passes on the ``PreviewData`` it shows.
    """

    EVENTS = [
        Events.change,
        EventListener("stop", doc="Triggered when the user clicks the Stop button of a run."),
        EventListener(
            "finish", doc="Triggered when the user asks a run to finish with its current preview."
        ),
    ]
    data_model = PreviewData

    def __init__(
        self,
        value: RunState | FinalImage | Callable | None = None,
        *,
        label: str | None = None,
        every: Timer | float | None = None,
        inputs: Component | Sequence[Component] | set[Component] | None = None,
        show_label: bool | None = None,
        container: bool = True,
        scale: int | None = None,
        min_width: int = 160,
        height: int | str | None = None,
        width: int | str | None = None,
        columns: int | None = None,
        show_stop_button: bool = True,
        show_finish_button: bool = True,
        final_format: str = "png",
        keep_images_for: float | None = None,
        interactive: bool | None = None,
        visible: bool = True,
        elem_id: str | None = None,
        elem_classes: list[str] | str | None = None,
        render: bool = True,
        key: int | str | None = None,
    ):
        """
        Parameters:
            value: a run state or a final image to show first; a callable is called on load.
            label: the label shown above the component.
            every: with a callable value, how often (seconds) to call it again.
            inputs: with a callable value, the components whose values it receives.
            show_label: whether to show the label.
            container: whether to draw the component in a padded container.
            scale: relative width compared to neighbours in a Row.
            min_width: minimum width in pixels.
            height: height of the preview area (pixels or CSS size), like gr.Image.
            width: width of the component (pixels or CSS size), like gr.Image.
            columns: columns of the final-image grid; by default one per image, up to 4.
            show_stop_button: show a Stop button while a run is active (dispatches "stop").
            show_finish_button: show a "Use this preview" button while a run is active
                (dispatches "finish"); only useful with backends that can finish early.
            final_format: file format of final images: "png" (lossless, default) or "webp".
            keep_images_for: seconds a final image file stays in Gradio's cache before it is
                removed (None: kept until the server stops). Public apps set it, e.g. to
                ``policy.image_max_age``, so the disk does not fill over weeks.
            interactive: unused (the component is an output); kept for Gradio compatibility.
            visible: whether the component is visible.
            elem_id: an HTML id for the component.
            elem_classes: HTML classes for the component.
            render: whether to render the component now in the current Blocks.
            key: a key for re-rendering with gr.render.
        """
        self.height = height
        self.width = width
        self.columns = columns
        self.show_stop_button = show_stop_button
        self.show_finish_button = show_finish_button
        self.final_format = final_format
        self.retention = None if keep_images_for is None else ImageRetention(keep_images_for)
        super().__init__(
            label=label,
            every=every,
            inputs=inputs,
            show_label=show_label,
            container=container,
            scale=scale,
            min_width=min_width,
            interactive=interactive,
            visible=visible,
            elem_id=elem_id,
            elem_classes=elem_classes,
            render=render,
            key=key,
            value=value,
        )

    def preprocess(self, payload: PreviewData | None) -> PreviewData | None:
        """
        Parameters:
            payload: the run state shown in the browser.
        Returns:
            The same ``PreviewData`` (its ``run_id`` identifies a running run).
        """
        return payload

    def postprocess(
        self, value: RunState | PreviewData | FinalImage | list | None
    ) -> PreviewData | None:
        """
        Parameters:
            value: a ``RunState``, a ``PreviewData``, or one or more final images.
        Returns:
            The ``PreviewData`` sent to the browser; final images are saved as files.
        """
        if value is None:
            return None
        if isinstance(value, PreviewData):
            return value
        if isinstance(value, RunState):
            fields = value.model_dump(exclude={"images"})
            return PreviewData(**fields, images=[self._save(image) for image in value.images])
        images = value if isinstance(value, list | tuple) else [value]
        if not images or not all(_is_final_image(image) for image in images):
            raise TypeError(
                f"DiffusionPreview cannot show a value of type {type(value).__name__}; "
                f"it accepts {ACCEPTED}."
            )
        files = [self._save(image) for image in images]
        return PreviewData(status="done", images=files, message=None)

    def _save(self, image: FinalImage) -> FileData:
        if isinstance(image, str | Path):
            path = Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"DiffusionPreview: no image file at '{path}'")
            return FileData(path=str(path), orig_name=path.name)
        pil = image if isinstance(image, PIL.Image.Image) else _array_to_pil(image)
        path = processing_utils.save_pil_to_cache(
            pil, cache_dir=self.GRADIO_CACHE, format=self.final_format
        )
        if self.retention is not None:
            self.retention.keep(path)
        mime_type = f"image/{self.final_format}"
        return FileData(path=path, orig_name=Path(path).name, mime_type=mime_type)

    def attach_run(self, run: Dependency, api_visibility: str = "private") -> None:
        """Wire this component's Stop and "Use this preview" buttons to a run event.

        ``run`` is the event that streams into this component, e.g. ``button.click(...)``.
        The handlers act only on runs of the caller's own session (see ``ownership``) and are
        kept off the API page; ``api_visibility="public"`` lists them there, so API clients
        (such as the ``gradio`` remote backend) can stop or finish their own runs.
        """
        hidden = {"outputs": None, "queue": False, "api_visibility": api_visibility}
        self.stop(fn=_cancel_shown_run, inputs=self, cancels=[run], **hidden)
        self.finish(fn=_finish_shown_run, inputs=self, **hidden)

    def example_payload(self) -> Any:
        return PreviewData(status="done", step=20, total_steps=20).model_dump()

    def example_value(self) -> Any:
        return PIL.Image.new("RGB", (64, 64), (200, 120, 40))


def _is_final_image(value: Any) -> bool:
    if isinstance(value, PIL.Image.Image | str | Path):
        return True
    return isinstance(value, np.ndarray) and value.ndim in (2, 3)


def _array_to_pil(array: np.ndarray) -> PIL.Image.Image:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return PIL.Image.fromarray(array)


def _cancel_shown_run(shown: PreviewData | None, request: gradio.Request) -> None:
    session = session_of(request)
    if shown is not None and session is not None:
        cancel_run(shown.run_id, session)


def _finish_shown_run(shown: PreviewData | None, request: gradio.Request) -> None:
    session = session_of(request)
    if shown is not None and session is not None:
        finish_run(shown.run_id, session)
