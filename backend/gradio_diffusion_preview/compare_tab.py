"""The Compare UI: one prompt and seed sent to 2 to 4 catalogue models, side by side.

    with gr.Blocks() as demo:
        with gr.Tab("Compare"):
            compare_tab(policy)

Built inside the current Blocks (a tab, a column): prompt, negative prompt, seed (-1: one random
seed for all), steps, size, the models to compare (2 to 4 of the policy's catalogue), Compare and
Stop buttons, and one ``DiffusionPreview`` per model, labelled with the model's label and shown
only when chosen. A chosen model that cannot run here says why in its panel at once. The compare
event is on the API as ``/compare`` (its outputs: the four panels, ``None`` for unused ones).
"Stop all" stops every run of the caller's compare within a step (each panel: Cancelled); each
panel's own Stop stops only its run. Closing the tab or an API client's cancel stop them all too.

``compare_tab(policy, edit=True)`` compares edits: one input image and strength sent to 2 to 4
of the catalogue's models that take an image (``/compare_edit``; each result has the picture's
size, and a model that edits by instruction gets no strength).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
from gradio.events import Dependency, EventData

from . import page_style
from .compare import (
    MAX_MODELS,
    MIN_MODELS,
    CompareRefused,
    chosen_entries,
    compare,
)
from .component import DiffusionPreview, _run_id_of
from .controls import entry_title, request_seed, unavailable_reason
from .generate_tab import (
    API_EXAMPLE_FILE,
    DEFAULT_STRENGTH,
    api_example_file,
    image_entries,
    input_image_box,
    text_entries,
    uploaded_image,
)
from .ownership import session_of
from .plugins import get_registry
from .policy import CatalogueEntry, Policy
from .request_guard import use_policy
from .run_handles import cancel_run, stop_session_runs
from .run_state import RunState
from .upload_expiry import expire_uploads

COMPARE_DESCRIPTION = (
    f"Run one prompt and seed on {MIN_MODELS} to {MAX_MODELS} of this app's models side by "
    "side, streaming each run's steps. `models` are catalogue ids; seed -1 draws one random "
    f"seed for all. Returns {MAX_MODELS} run states, None for the unused places."
)


COMPARE_EDIT_DESCRIPTION = (
    f"Edit one picture on {MIN_MODELS} to {MAX_MODELS} of this app's models that take an image, "
    "side by side, with one prompt, seed and strength (models that edit by instruction take no "
    f"strength); each result has the picture's size. Returns {MAX_MODELS} run states, None for "
    "the unused places."
)


@dataclass
class CompareTab:
    """The parts of a compare UI, for an app to wire further (or a test to find)."""

    models: gr.CheckboxGroup
    button: gr.Button
    stop: gr.Button
    panels: list[DiffusionPreview]
    run: Dependency


def compare_tab(
    policy: Policy,
    *,
    prompt: str = "",
    models: list[str] | None = None,
    panel_height: int = 256,
    edit: bool = False,
    image: Any = None,
) -> CompareTab:
    """Build the compare UI under ``policy`` in the current Blocks; ``models`` are the ids
    chosen at first (default: the first catalogue entries that can run here, up to three).

    With ``edit=True`` it compares edits: one input image (``image``: its first picture) and
    one strength for every model, only the catalogue's entries whose model takes an image
    offered, no size (each result has the input's size), on the API as ``/compare_edit``. A
    model that edits by instruction gets no strength."""
    use_policy(policy)  # the app's request guard holds bodies and uploads to its bounds
    if edit:  # its input image box takes uploads, which then leave the cache in time
        expire_uploads(policy.image_max_age)
    offered = image_entries(policy) if edit else text_entries(policy)
    if edit and len(offered) < MIN_MODELS:
        raise ValueError(
            f"compare_tab(edit=True) needs {MIN_MODELS} catalogue entries whose model takes an "
            f"input image (capabilities image_to_image or instruction_editing), found "
            f"{len(offered)}; add them to the policy's catalogue."
        )
    chosen = models or _first_usable(policy, offered)
    kind = "diffusion-compare-edit" if edit else "diffusion-compare"
    with gr.Column(elem_classes=[kind, page_style.SCOPE]):
        page_style.page_style()
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                prompt_box = gr.Textbox(label="Prompt", value=prompt, lines=1, max_lines=6)
                image_box = strength = None
                if edit:
                    image_box = input_image_box(image, height=192)
                    strength = gr.Slider(
                        0.0,
                        1.0,
                        value=DEFAULT_STRENGTH,
                        step=0.05,
                        label="Strength",
                        info="How much of the picture is remade (models that edit by "
                        "instruction take none).",
                    )
                    image_box.example_payload = api_example_file
                    image_box.example_value = lambda: API_EXAMPLE_FILE
                    strength.example_payload = strength.example_value = lambda: DEFAULT_STRENGTH
                with gr.Row():
                    button = gr.Button("Compare", variant="primary")
                    stop = gr.Button("Stop all", variant="stop")
                choice = gr.CheckboxGroup(
                    [(entry_title(entry), entry.id) for entry in offered],
                    value=chosen,
                    label=f"Models ({MIN_MODELS} to {MAX_MODELS})",
                    info="Models marked (off) cannot run on this server.",
                )
            with gr.Column(scale=1, min_width=300), gr.Accordion("Advanced settings", open=False):
                negative = gr.Textbox(label="Negative prompt", value="")
                shared = shared_ranges(policy, chosen)
                steps = gr.Slider(label="Steps", **shared["steps"])
                with gr.Row(visible=not edit):  # an edit's results have the input's size
                    width = gr.Slider(label="Width", min_width=140, **shared["width"])
                    height = gr.Slider(label="Height", min_width=140, **shared["height"])
                seed = gr.Number(value=-1, precision=0, label="Seed", info="-1: one random seed")
        gr.Markdown(
            "The same prompt and seed go to every model. Models on this server's CPU take "
            "turns; remote ones run at once. Each panel shows its place in line, its time and "
            "steps per second."
        )
        with gr.Row(equal_height=True, elem_classes=[f"{kind}-panels"]):
            # each panel in a column of its own, all in one row below the settings: columns
            # share the row's width equally (four fit side by side at 1366 px)
            columns, panels = [], []
            for index in range(MAX_MODELS):
                with gr.Column(visible=index < len(chosen), min_width=240) as column:
                    panel = DiffusionPreview(
                        label=_label(policy, chosen, index) or f"Model {index + 1}",
                        value=_panel_value(policy, chosen, index),
                        height=panel_height,
                        history=0,
                        show_finish_button=False,
                        keep_images_for=policy.image_max_age,
                    )
                columns.append(column)
                panels.append(panel)
    if edit:
        fn, inputs = partial(run_compare_edit, policy), [image_box, strength]
    else:
        fn, inputs = partial(run_compare, policy), [width, height]
    run = button.click(
        fn,
        [choice, prompt_box, negative, steps, seed, *inputs],
        panels,
        api_name="compare_edit" if edit else "compare",
        api_description=COMPARE_EDIT_DESCRIPTION if edit else COMPARE_DESCRIPTION,
        preprocess=False,
        concurrency_limit=policy.concurrency_limit,
        concurrency_id="compare",
    )
    # Stop all ends each run with a Cancelled state and the event normally (cancelling the
    # event instead can reach the page as an error, and leaves API callers no final states).
    stop.click(_stop_all, None, None, queue=False, api_name=False)
    for panel in panels:
        panel.stop(_stop_own_run, None, None, queue=False, api_visibility="private")
    choice.change(
        partial(show_panels, policy), choice, [*columns, *panels], queue=False, api_name=False
    )
    choice.change(
        partial(_ranges_for, policy), choice, [steps, width, height], queue=False, api_name=False
    )
    return CompareTab(choice, button, stop, panels, run)


def run_compare(
    policy: Policy,
    models: Any,
    prompt: Any,
    negative_prompt: Any,
    steps: Any,
    seed: Any,
    width: Any,
    height: Any,
    **edit: Any,
):
    """The compare event: the chosen models' states, ``None`` for the unused panels. A bad
    choice of models is refused with a notice naming the fix. ``edit`` (``init_image``,
    ``strength``) makes every run an edit of one picture."""
    fields = {
        "prompt": prompt,
        "negative_prompt": negative_prompt or "",
        "steps": steps,
        "seed": request_seed(seed),
        "width": width,
        "height": height,
        **edit,
    }
    try:
        entries = chosen_entries(policy, models)
    except CompareRefused as error:
        raise gr.Error(str(error)) from None
    padding = (None,) * (MAX_MODELS - len(entries))
    runs = compare(policy, [entry.id for entry in entries], **fields)
    try:
        for states in runs:
            yield (*states, *padding)
    finally:
        runs.close()


def run_compare_edit(
    policy: Policy,
    models: Any,
    prompt: Any,
    negative_prompt: Any,
    steps: Any,
    seed: Any,
    image: Any,
    strength: Any,
):
    """The compare-edits event: one uploaded picture and strength on every chosen model (the
    results have the picture's size); no picture is refused with a notice naming the fix."""
    try:
        picture = uploaded_image(image, policy.limits.max_input_bytes)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    yield from run_compare(
        policy,
        models,
        prompt,
        negative_prompt,
        steps,
        seed,
        None,
        None,
        init_image=picture,
        strength=strength,
    )


def show_panels(policy: Policy, models: Any):
    """One panel per chosen model, labelled with it; one that cannot run here says why (the
    four columns' visibility, then the four panels)."""
    chosen = [entry.id for entry in _known(policy, models)][:MAX_MODELS]
    columns = [gr.update(visible=index < len(chosen)) for index in range(MAX_MODELS)]
    panels = [
        gr.update(label=_label(policy, chosen, index), value=_panel_value(policy, chosen, index))
        for index in range(MAX_MODELS)
    ]
    return [*columns, *panels]


def shared_ranges(policy: Policy, models: Any) -> dict[str, dict]:
    """Slider settings for steps, width and height that every chosen model accepts: the
    overlap of their ranges under the policy's limits, and the first model's defaults within
    it (a size only some of them take would fail in the others' panels)."""
    registry = get_registry()
    caps = [
        policy.controls(entry, registry.get(entry.backend))
        for entry in _known(policy, models)
        if entry.backend in registry.backends()
    ]
    limits = policy.limits
    if not caps:
        return {
            "steps": {"minimum": 1, "maximum": limits.max_steps, "value": 20, "step": 1},
            **{
                name: {"minimum": 64, "maximum": limits.max_side, "value": 64, "step": 64}
                for name in ("width", "height")
            },
        }
    low = max(c.steps_range[0] for c in caps)
    high = max(low, min(c.steps_range[1] for c in caps))
    step = max(c.size_multiple for c in caps)
    small = max(c.min_size for c in caps)
    large = max(small, min(c.max_size for c in caps))
    large -= (large - small) % step

    def within(value: float, bottom: float, top: float) -> float:
        return min(max(value, bottom), top)

    def slider(bottom: float, top: float, value: float, size: float) -> dict:
        if bottom == top:  # one value only: a fixed slider (Gradio needs minimum < maximum)
            return {
                "minimum": top - size,
                "maximum": top,
                "value": top,
                "step": size,
                "interactive": False,
            }
        return {
            "minimum": bottom,
            "maximum": top,
            "value": within(value, bottom, top),
            "step": size,
            "interactive": True,
        }

    first = caps[0]
    return {
        "steps": slider(low, high, first.default_steps, 1),
        "width": slider(small, large, first.default_size[0], step),
        "height": slider(small, large, first.default_size[1], step),
    }


def _ranges_for(policy: Policy, models: Any) -> list:
    shared = shared_ranges(policy, models)
    return [gr.Slider(**shared[name]) for name in ("steps", "width", "height")]


def _known(policy: Policy, models: Any) -> list[CatalogueEntry]:
    names = models if isinstance(models, list) else []
    return [entry for entry in policy.catalogue if entry.id in names]


def _entry(policy: Policy, chosen: list[str], index: int) -> CatalogueEntry | None:
    if index >= len(chosen):
        return None
    return next((entry for entry in policy.catalogue if entry.id == chosen[index]), None)


def _label(policy: Policy, chosen: list[str], index: int) -> str | None:
    entry = _entry(policy, chosen, index)
    return entry.title if entry else None


def _panel_value(policy: Policy, chosen: list[str], index: int) -> RunState | None:
    """Nothing for an unused panel; for a model, an empty panel ready for it (with, for a
    model that cannot run here, why, before anyone waits). Ready for a model, not empty: if
    this answer reaches the page after a run of that model began (a busy server answers the
    change of models late), the widget keeps that run instead of wiping it."""
    entry = _entry(policy, chosen, index)
    if entry is None:
        return None
    return RunState(status="idle", model=entry.id, message=unavailable_note(entry))


def unavailable_note(entry: CatalogueEntry) -> str | None:
    """Why ``entry``'s backend cannot run here, in one line, or None if it can."""
    reason = unavailable_reason(entry.backend)
    return f"Not available here: {reason}." if reason else None


def _first_usable(policy: Policy, entries: list[CatalogueEntry] | None = None) -> list[str]:
    entries = list(policy.catalogue) if entries is None else entries
    usable = [entry.id for entry in entries if unavailable_note(entry) is None]
    return (usable or [entry.id for entry in entries])[:3]


def _stop_all(request: gr.Request) -> None:
    """Stop all: every run of the caller's session, waiting or running (never anyone else's)."""
    session = session_of(request)
    if session is not None:
        stop_session_runs(session)


def _stop_own_run(evt: EventData, request: gr.Request) -> None:
    """A panel's own Stop: only the run it shows, and only the caller's (see ``ownership``)."""
    session, run_id = session_of(request), _run_id_of(evt)
    if session is not None and run_id is not None:
        cancel_run(run_id, session)
