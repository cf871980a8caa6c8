"""DiffusionPreview: a Gradio output component that shows a text-to-image run as it happens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gradio
import numpy as np
import PIL.Image
from gradio.components.base import Component
from gradio.data_classes import FileData
from gradio.events import Dependency, EventData, EventListener, Events
from pydantic import ValidationError

from .app_guards import install_on_start
from .final_images import embed_metadata
from .generation_info import file_stem, image_metadata, infotext
from .image_cache import save_to_cache
from .image_retention import ImageRetention
from .ownership import session_of
from .preview_fit import fit_preview
from .run_handles import cancel_run, finish_run, runs_of_session
from .saved_images import SavedOnce
from .state import GenerationParams, PreviewData, RunState

if TYPE_CHECKING:
    from gradio.components import Timer

FinalImage = PIL.Image.Image | np.ndarray | str | Path
ACCEPTED = (
    "a RunState (from gradio_diffusion_preview.stream), a PreviewData, a PIL image, a numpy "
    "array, a path to an image file, a list of those images, or None"
)
# Decimals the timing figures keep on the wire: a float's 17 digits cost ~40 bytes per frame.
INPUT_TYPES = ("state", "pil", "numpy", "filepath")
"""What a handler may receive from the component as an input (its ``type``)."""
WIRE_ROUNDING = {"elapsed": 3, "waited": 3, "eta": 3, "steps_per_second": 3}
BUTTONS = ("download", "fullscreen")
"""The buttons a final image may show (``buttons``): gr.Image's, less "share"."""


class ReuseData(EventData):
    """What the "reuse" event carries: the seed and settings of the image the user chose.

    Annotate a handler's argument with it (``def fill(evt: ReuseData)``), or let
    ``DiffusionPreview.attach_reuse`` do the wiring. ``params`` is a ``GenerationParams``
    (empty when the browser sent something unreadable), ``seed`` that image's seed, ``index``
    its place in its batch. Values come from the browser: treat them as user input.
    """

    def __init__(self, target: Any, data: Any) -> None:
        super().__init__(target, data)
        payload = data if isinstance(data, dict) else {}
        try:
            self.params = GenerationParams.model_validate(payload.get("params") or {})
        except ValidationError:
            self.params = GenerationParams()
        seed, index = payload.get("seed"), payload.get("index")
        self.seed: int | None = seed if isinstance(seed, int) and seed >= 0 else self.params.seed
        self.index: int = index if isinstance(index, int) and index >= 0 else 0

    def value(self, name: str) -> Any:
        """The value of one setting (a ``GenerationParams`` field; ``seed``: this image's)."""
        if name == "seed":
            return self.seed
        return getattr(self.params, name)


class DiffusionPreview(Component):
    """Shows a generation run: a live preview of every denoising step, progress with steps per
    second and ETA, queue position, a Stop button, and the final images to view, download and
    reuse, with their generation info.

    As an output it takes the ``RunState`` values that ``stream`` yields, or simply a final image
    (PIL image, numpy array or path). As an input it passes on the ``PreviewData`` it shows.
    """

    EVENTS = [
        Events.change,
        Events.select,
        Events.clear,
        EventListener("stop", doc="Triggered when the user clicks the Stop button of a run."),
        EventListener(
            "stop_confirmed",
            doc="Triggered by Stop for a run whose backend passes the cancel on to a service "
            "(cancel_confirms): the run streams on ('Stopping…') until the service answers.",
        ),
        EventListener(
            "finish", doc="Triggered when the user asks a run to finish with its current preview."
        ),
        EventListener(
            "finished",
            doc="Triggered once when a run shown in the browser reaches its final images (not "
            "on every streamed state, as change is).",
        ),
        EventListener(
            "reuse",
            doc="Triggered when the user asks to reuse an image's seed and settings; the "
            "handler receives them as a ReuseData argument. See attach_reuse.",
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
        buttons: Sequence[Literal["download", "fullscreen"]] | None = None,
        placeholder: str | None = None,
        show_stop_button: bool = True,
        show_finish_button: bool = True,
        final_format: str = "png",
        format: str | None = None,
        type: Literal["state", "pil", "numpy", "filepath"] = "state",
        history: int = 8,
        scroll_into_view: bool = True,
        preview_max_side: int | None = None,
        preview_quality: int | None = None,
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
            height: height of the preview area (pixels or CSS size); the progress bar and
                generation info go below it, so the images keep their size when they appear.
            width: width of the component (pixels or CSS size), like gr.Image.
            columns: columns of the final-image grid; by default one per image, up to 4.
            buttons: what each final image offers, as ``gr.Image``'s ``buttons``: "download"
                (a download link in its corner) and "fullscreen" (a click opens the full-size
                viewer; the history strip too). Default: both; ``[]``: neither. "share" and
                ``gr.Button`` instances are not supported.
            placeholder: text shown on the empty stage before any run (None: an image icon),
                as ``gr.Image``'s ``placeholder``: new lines separate lines, and a line that
                starts with ``#`` is a heading.
            show_stop_button: show a Stop button while a run is active (dispatches "stop").
            show_finish_button: show a "Use this preview" button while a run is active
                (dispatches "finish"); only useful with backends that can finish early.
            final_format: file format of final images: "png" (lossless, default) or "webp".
                Either way each file carries its generation info (PNG: a "parameters" text
                chunk in AUTOMATIC1111's format plus a JSON chunk; WebP: EXIF UserComment) and
                is named after the prompt and seed.
            format: the same as ``final_format`` (``gr.Image``'s name for it); wins when given.
            type: what a handler receives when the component is an input: "state" (the
                ``PreviewData`` shown, with its run id and settings), or, as ``gr.Image``'s
                ``type``, its first final image as "pil", "numpy" or "filepath" (None while
                there is none).
            history: how many of this browser session's recent results to keep in a strip
                under the stage (0: no strip).
            scroll_into_view: on narrow screens (phones), scroll the component into view when
                a run starts, so the user sees it begin.
            preview_max_side: the longest side, in pixels, of the previews sent to the browser;
                larger ones are scaled down (None: as ``stream`` made them, at most 512).
            preview_quality: JPEG quality (1-95) of the previews sent to the browser (None: as
                ``stream`` made them, 80). Lower both for visitors on slow links.
            keep_images_for: seconds a final image file stays in Gradio's cache before it is
                removed (None: kept until the server stops). Public apps set it, e.g. to
                ``policy.image_max_age``, so the disk does not fill over weeks.
            interactive: False makes it display-only: no Stop, "Use this preview", Reuse or
                clear button (events wired to them cannot fire from the page; select still
                does). True shows the clear button on a result even with no ``clear`` listener.
                None (default): the run controls, and the clear button when something
                listens to ``clear``. Read at construction (``gr.update`` cannot change it).
            visible: whether the component is visible.
            elem_id: an HTML id for the component.
            elem_classes: HTML classes for the component.
            render: whether to render the component now in the current Blocks.
            key: a key for re-rendering with gr.render.
        """
        self.height = height
        self.width = width
        self.columns = columns
        self.buttons = _checked_buttons(buttons)
        self.placeholder = placeholder
        self.show_stop_button = show_stop_button
        self.show_finish_button = show_finish_button
        if type not in INPUT_TYPES:
            raise ValueError(
                f"DiffusionPreview: type={type!r} is not one of {', '.join(INPUT_TYPES)}."
            )
        self.type = type
        self.final_format = format if format is not None else final_format
        self.history = max(0, int(history))
        self.scroll_into_view = scroll_into_view
        if preview_max_side is not None and preview_max_side < 16:
            raise ValueError(
                f"DiffusionPreview: preview_max_side={preview_max_side} is too small; "
                "use at least 16 pixels, or None for the stream's size."
            )
        if preview_quality is not None and not 1 <= preview_quality <= 95:
            raise ValueError(
                f"DiffusionPreview: preview_quality={preview_quality} is out of range; "
                "use 1 to 95, or None for the stream's quality."
            )
        self.preview_max_side = preview_max_side
        self.preview_quality = preview_quality
        self.retention = None if keep_images_for is None else ImageRetention(keep_images_for)
        self._saved_once = SavedOnce()
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
        _guard_app()

    def get_config(self, cls: type | None = None) -> dict[str, Any]:
        """The props sent to the browser, plus what ``interactive`` asked for: the page's own
        ``interactive`` prop is inferred (an output-only component's is false), so it cannot
        tell "display only" from the default."""
        config = super().get_config(cls)
        config["display_only"] = self.interactive is False
        config["clearable"] = self.interactive is True
        return config

    def preprocess(self, payload: PreviewData | None) -> Any:
        """
        Parameters:
            payload: the run state shown in the browser.
        Returns:
            With ``type="state"``, the same ``PreviewData`` (its ``run_id`` identifies a
            running run); otherwise its first final image as a PIL image, a numpy array or a
            file path (None while there is none).
        """
        if self.type == "state" or payload is None:
            return payload
        if not payload.images or not payload.images[0].path:
            return None
        path = payload.images[0].path
        if self.type == "filepath":
            return path
        with PIL.Image.open(path) as image:
            image = image.convert("RGB")
        return image if self.type == "pil" else np.asarray(image)

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
            return self._run_to_wire(value)
        images = value if isinstance(value, list | tuple) else [value]
        if not images or not all(_is_final_image(image) for image in images):
            raise TypeError(
                f"DiffusionPreview cannot show a value of type {type(value).__name__}; "
                f"it accepts {ACCEPTED}."
            )
        files = [self._save(image) for image in images]
        return PreviewData(status="done", images=files, message=None)

    def _run_to_wire(self, state: RunState) -> PreviewData:
        fields = state.model_dump(exclude={"images", "input_image"})
        if state.input_image is not None:  # an edit's input: the first frame, the "before"
            # the same picture in every state of the run: one file, encoded once
            save = partial(self._save, state.input_image, name="input")
            fields["input_image"] = self._saved_once.saved(state.input_image, None, save)
        for name, digits in WIRE_ROUNDING.items():  # every frame carries them
            if fields.get(name) is not None:
                fields[name] = round(fields[name], digits)
        if self.preview_max_side is not None or self.preview_quality is not None:
            fields["preview"] = fit_preview(
                state.preview, self.preview_max_side, self.preview_quality
            )
            fields["previews"] = [
                fit_preview(url, self.preview_max_side, self.preview_quality)
                for url in state.previews
            ]
        params = state.params
        files, infotexts = [], []
        # images that arrived one by one (ImageReady) are those of ``ready``, in its order
        indices = state.ready if len(state.ready) == len(state.images) else range(len(state.images))
        elapsed = state.elapsed if state.status != "running" else None
        for index, image in zip(indices, state.images, strict=False):
            seed = state.seeds[index] if index < len(state.seeds) else None
            if params is None:
                files.append(self._save(image))
                continue
            infotexts.append(infotext(params, seed))
            name = file_stem(params.prompt, seed, index)
            # no run time in an image that arrived mid-run: its file stays the same bytes
            # (one file, encoded once, not one per streamed state) until the run is done
            text = image_metadata(params, seed, index, elapsed)
            if state.status == "running":
                save = partial(self._save, image, name=name, text=text)
                files.append(self._saved_once.saved(image, text, save))
            else:
                files.append(self._save(image, name=name, text=text))
        return PreviewData(**fields, images=files, infotexts=infotexts)

    def _save(
        self, image: FinalImage, name: str = "image", text: dict[str, str] | None = None
    ) -> FileData:
        if isinstance(image, str | Path):
            path = Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"DiffusionPreview: no image file at '{path}'")
            return FileData(path=str(path), orig_name=path.name)
        pil = image if isinstance(image, PIL.Image.Image) else _array_to_pil(image)
        if text:
            pil = embed_metadata(pil, text, self.final_format)
        # never rewrites a file being served (see image_cache)
        path = save_to_cache(pil, self.GRADIO_CACHE, name, self.final_format)
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
        _guard_app()
        self.stop(fn=_cancel_shown_run, inputs=None, cancels=[run], **hidden)
        # a run whose service answers the cancel is not cut off: it ends with that answer
        self.stop_confirmed(fn=_cancel_shown_run, inputs=None, **hidden)
        self.finish(fn=_finish_shown_run, inputs=None, **hidden)

    def attach_reuse(
        self,
        *,
        prompt: Component | None = None,
        negative_prompt: Component | None = None,
        seed: Component | None = None,
        steps: Component | None = None,
        guidance: Component | None = None,
        width: Component | None = None,
        height: Component | None = None,
        num_images: Component | None = None,
        model: Component | None = None,
    ) -> Dependency:
        """Fill the app's inputs with the seed and settings of an image the user chose to
        reuse (the "Reuse" buttons), in one line::

            preview.attach_reuse(prompt=prompt, seed=seed, steps=steps, width=width, height=height)

        Only the components given are filled; a setting the run did not have (e.g. guidance
        for a backend without it) leaves its component as it is. ``model`` receives a display
        name (a local folder shows only its name): pass it only if your model box takes those.
        """
        given = {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "width": width,
            "height": height,
            "num_images": num_images,
            "model": model,
        }
        targets = {name: component for name, component in given.items() if component is not None}
        if not targets:
            raise ValueError(
                "DiffusionPreview.attach_reuse: name at least one input to fill, e.g. "
                "attach_reuse(prompt=prompt_box, seed=seed_box)."
            )

        def fill(evt: ReuseData) -> list[Any]:
            from gradio import skip

            values = [evt.value(name) for name in targets]
            return [skip() if value is None else value for value in values]

        return self.reuse(
            fill,
            inputs=None,
            outputs=list(targets.values()),
            queue=False,
            show_progress="hidden",
            api_name=False,
        )

    def example_payload(self) -> Any:
        return PreviewData(status="done", step=20, total_steps=20).model_dump()

    def example_value(self) -> Any:
        return PIL.Image.new("RGB", (64, 64), (200, 120, 40))


def _guard_app() -> None:
    """Guard the app this component is built into, when it starts (see ``app_guards``): only
    an event's own session may cancel it, and no final image is removed while served."""
    from gradio.context import Context

    if Context.root_block is not None:
        install_on_start(Context.root_block)


def _checked_buttons(buttons: Sequence[str] | None) -> list[str]:
    """``buttons`` as a list, refusing what a final image cannot offer with the fix."""
    if buttons is None:
        return list(BUTTONS)
    if isinstance(buttons, str):
        raise TypeError(
            f"DiffusionPreview: buttons={buttons!r} must be a list, e.g. buttons=[{buttons!r}]."
        )
    wrong = [button for button in buttons if button not in BUTTONS]
    if wrong:
        raise ValueError(
            f"DiffusionPreview: buttons {wrong!r} are not offered; choose from "
            f'{", ".join(BUTTONS)} ("share" and gr.Button instances are not supported).'
        )
    return list(buttons)


def _is_final_image(value: Any) -> bool:
    if isinstance(value, PIL.Image.Image | str | Path):
        return True
    return isinstance(value, np.ndarray) and value.ndim in (2, 3)


def _array_to_pil(array: np.ndarray) -> PIL.Image.Image:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return PIL.Image.fromarray(array)


def _run_id_of(evt: EventData) -> str | None:
    """The run a Stop or "Use this preview" click was for: the browser sends its run_id as the
    event's data (not the component's value, so these clicks never touch its loading status)."""
    data = evt._data if isinstance(evt._data, dict) else {}
    run_id = data.get("run_id")
    return run_id if isinstance(run_id, str) else None


def _runs_meant(evt: EventData, session: str) -> list[str]:
    """The run the browser named, or, when a caller names none (an API client calling the
    endpoint, which cannot send event data), every run of the caller's own session."""
    run_id = _run_id_of(evt)
    return [run_id] if run_id is not None else runs_of_session(session)


def _cancel_shown_run(evt: EventData, request: gradio.Request) -> None:
    session = session_of(request)
    if session is not None:
        for run_id in _runs_meant(evt, session):
            cancel_run(run_id, session)


def _finish_shown_run(evt: EventData, request: gradio.Request) -> None:
    session = session_of(request)
    if session is not None:
        for run_id in _runs_meant(evt, session):
            finish_run(run_id, session)
