"""The Generate UI: a prompt, a model of the policy's catalogue, and its run, step by step.

    with gr.Blocks() as demo:
        with gr.Tab("Generate"):
            generate_tab(policy, prompt="a red circle on a blue background")

Built inside the current Blocks: the prompt (Enter runs, Shift+Enter adds a line), Generate
(Stop while a run goes on), the model (every catalogue entry; one that cannot run here is
marked and says why in one line, and Generate is then off), what the model draws, the words of
the prompt the model ignores and what to write when it names no shape (for the bundled shapes
model, whose words are known: ``bundled.shapes.words``), and an
"Advanced settings" accordion whose controls follow the model (see ``controls``). A failed
run says what went wrong in a short sentence (the owner's fix goes to the log) and the
failure clears when the model changes. The run is on the API as ``/generate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.events import Dependency

from . import controls, page_style
from .backend import Capabilities
from .component import DiffusionPreview
from .model_fields import accepted_fields
from .ownership import session_of
from .plugins import get_registry
from .policy import CatalogueEntry, Policy
from .request import MAX_SEED
from .request import random_seed as draw_seed
from .request_guard import use_policy
from .run_handles import runs_of_session, stop_session_runs
from .run_state import RunState
from .streaming import raise_failed, stream
from .upload_expiry import expire_uploads

GENERATE_DESCRIPTION = (
    "Make an image from a prompt with one of this app's models, streaming every denoising "
    "step. `backend` and `model` name a catalogue entry (see the model list); seed -1 picks "
    "a random seed; `options_json` is a JSON object of backend options, e.g. "
    '{"scheduler": "euler_a"}, or empty for the model\'s own.'
)
EDIT_DESCRIPTION = (
    "Remake an input image by a prompt with one of this app's models that take an image, "
    "streaming every denoising step from the input on. The prompt describes the result "
    '(e.g. "a blue star on a white background"); `strength` (0 to 1) is how much of the input '
    "is remade; the result has the input's size. `backend`, `model`, seed and `options_json` "
    "as for /generate."
)
DEFAULT_STRENGTH = 0.6
"""The Edit tab's strength slider before the visitor moves it."""


API_EXAMPLE_FILE = "picture.png"
"""The input image the API page's ``/edit`` snippet sends: a file of the reader's own (Gradio's
default is a picture on the internet, which an offline server cannot fetch)."""


def api_example_file() -> dict:
    """The ``/edit`` API page example for the image: ``handle_file('picture.png')``."""
    return {
        "path": API_EXAMPLE_FILE,
        "url": API_EXAMPLE_FILE,
        "orig_name": API_EXAMPLE_FILE,
        "meta": {"_type": "gradio.FileData"},
    }


@dataclass
class GenerateTab:
    """The parts of a generate UI, for an app to wire further (or a test to find)."""

    prompt: gr.Textbox
    button: gr.Button
    stop: gr.Button
    model: gr.Dropdown
    backend: gr.Dropdown
    preview: DiffusionPreview
    run: Dependency
    image: gr.Image | None = None
    strength: gr.Slider | None = None


def generate_tab(
    policy: Policy,
    *,
    prompt: str = "",
    examples: list[str] | None = None,
    preview_height: int = 512,
    edit: bool = False,
    image: Any = None,
) -> GenerateTab:
    """Build the generate UI under ``policy`` in the current Blocks (see the module's doc).

    With ``edit=True`` it is the Edit UI: an input image (``image``: its first picture, a PIL
    image or a file), a strength slider shown while there is an image, only the catalogue's
    entries whose capabilities take an image, and the run on the API as ``/edit``; the result
    has the input's size. The app's request guard then takes uploads, each held to the
    policy's ``max_file_size`` and ``Limits.max_input_bytes``."""
    use_policy(policy)  # the app's request guard holds bodies and uploads to its bounds
    if edit:  # its input image box takes uploads, which then leave the cache in time
        expire_uploads(policy.image_max_age)
    backends = get_registry().backends()
    catalogue = image_entries(policy) if edit else text_entries(policy)
    if not catalogue and edit:
        raise ValueError(
            "generate_tab(edit=True) needs a catalogue entry whose model takes an input image "
            "(capabilities image_to_image or instruction_editing); add one to the policy's "
            "catalogue, e.g. the bundled shapes model on the diffusers backend."
        )
    if not catalogue:
        raise ValueError(
            "generate_tab needs a catalogue entry whose model makes an image from a prompt; "
            "the policy's catalogue holds only models that edit pictures (use "
            "generate_tab(edit=True) for them, or add a text-to-image entry)."
        )
    first = _first_usable(policy, catalogue)
    initial = controls.control_settings(policy, first.backend, first.id) or {}
    with gr.Row(elem_classes=["diffusion-generate", page_style.SCOPE]):
        with gr.Column(scale=1, min_width=300):
            page_style.page_style()
            prompt_box = gr.Textbox(
                label="Prompt",
                value=prompt,
                lines=1,
                max_lines=6,
                placeholder="Describe the picture. Enter runs; Shift+Enter adds a line.",
                elem_classes=["diffusion-prompt"],
            )
            image_box = strength = None
            if edit:
                image_box = input_image_box(image, height=256)
                strength = gr.Slider(
                    0.0,
                    1.0,
                    value=DEFAULT_STRENGTH,
                    step=0.05,
                    label="Strength",
                    info="How much of the picture is remade: 0 keeps it, 1 ignores it.",
                    visible=image is not None,
                )
                # The API page's examples (a subclass would be served as a custom component):
                # the reader's own picture, not Gradio's picture on the internet, and the
                # slider's value, not its minimum (0 remakes nothing).
                image_box.example_payload = api_example_file
                image_box.example_value = lambda: API_EXAMPLE_FILE
                strength.example_payload = strength.example_value = lambda: DEFAULT_STRENGTH
            words = gr.Markdown(
                word_hint(first, prompt), elem_classes=["diffusion-hint"], padding=False
            )
            with gr.Row(elem_classes=["diffusion-run-buttons"]):
                button = gr.Button(
                    "Generate",
                    variant="primary",
                    interactive=controls.unavailable_reason(first.backend) is None,
                )
                stop = gr.Button("Stop generating", variant="stop", visible=False)
            model_box = gr.Dropdown(
                [(controls.entry_title(entry), entry.id) for entry in catalogue],
                value=first.id,
                label="Model",
            )
            backend = gr.Dropdown(
                [(backends[b].display_name if b in backends else b, b) for b in policy.backends()],
                value=first.backend,
                label="Backend",
                visible=False,  # follows the model; an API client names it
            )
            about = gr.Markdown(controls.entry_note(first), elem_classes=["diffusion-about"])
            with gr.Accordion("Advanced settings", open=False):
                negative = gr.Textbox(label="Negative prompt", value="", **initial["negative"])
                with gr.Row(equal_height=True, elem_classes=["diffusion-pair"]):
                    steps = gr.Slider(label="Steps", min_width=140, **initial["steps"])
                    guidance = gr.Slider(label="Guidance", min_width=140, **initial["guidance"])
                # An edit's result has the input's size: no size sliders there.
                with gr.Row(equal_height=True, elem_classes=["diffusion-pair"], visible=not edit):
                    width = gr.Slider(label="Width", min_width=140, **initial["width"])
                    height = gr.Slider(label="Height", min_width=140, **initial["height"])
                with gr.Row(equal_height=True, elem_classes=["diffusion-pair"]):
                    with gr.Column(min_width=140):
                        seed = gr.Number(
                            value=controls.RANDOM_SEED,
                            precision=0,
                            minimum=controls.RANDOM_SEED,
                            maximum=MAX_SEED,
                            label="Seed",
                            info="-1: random. Shows the latest run's seed, to make it again.",
                        )
                        random_seed = gr.Checkbox(value=True, label="Random seed each run")
                    num_images = gr.Slider(label="Images", min_width=140, **initial["num_images"])
                with gr.Row(elem_classes=["diffusion-pair"]):
                    sampler = gr.Dropdown(label="Sampler", min_width=140, **initial["sampler"])
                    previewer = gr.Dropdown(
                        label="Step previews", min_width=140, **initial["previewer"]
                    )
                # The backend options as JSON (an API client sends its own object here; empty:
                # the model's own), set from the dropdowns above when the visitor changes them.
                options = gr.Textbox(value="", visible=False, label="Options (JSON)")
        with gr.Column(scale=2):
            preview = DiffusionPreview(
                label="Generation", height=preview_height, keep_images_for=policy.image_max_age
            )
            if examples:
                gr.Examples([[e] for e in examples], inputs=[prompt_box], label="Try these")
    inputs = [
        backend,
        model_box,
        prompt_box,
        negative,
        steps,
        guidance,
        seed,
        width,
        height,
        num_images,
        options,
    ]
    if edit:
        inputs = [i for i in inputs if i not in (width, height)] + [image_box, strength]
    run_event = {
        "fn": _edit_for(policy) if edit else _generate_for(policy),
        "inputs": inputs,
        "outputs": preview,
        "preprocess": False,
        "concurrency_limit": policy.concurrency_limit,
        "concurrency_id": "generate",
        "api_description": EDIT_DESCRIPTION if edit else GENERATE_DESCRIPTION,
    }
    # The seed is settled before the run and written into the seed box, so the box always
    # shows the seed of the picture being made; Generate turns into Stop for the run.
    seed_first = {
        "fn": pick_seed,
        "inputs": [seed, random_seed, backend],
        "outputs": [seed, button, stop],
        "queue": False,
        "show_progress": "hidden",
        "api_name": False,
    }
    back = {
        "fn": _run_ended,
        "inputs": [backend],
        "outputs": [button, stop],
        "queue": False,
        "show_progress": "hidden",
        "api_name": False,
    }
    run = button.click(**seed_first).then(**run_event, api_name="edit" if edit else "generate")
    run.then(**back)
    submitted = prompt_box.submit(**seed_first).then(**run_event, api_name=False)
    submitted.then(**back)
    preview.attach_run(run)
    stop.click(_stop_runs, None, None, queue=False, api_name=False)
    preview.attach_reuse(
        prompt=prompt_box,
        negative_prompt=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
    )
    # A seed the visitor reuses or types is meant to be kept: random seeds turn off.
    keep_seed = {"fn": lambda: False, "outputs": random_seed, "api_name": False}
    preview.reuse(**keep_seed, queue=False, show_progress="hidden")
    seed.input(**keep_seed, queue=False, show_progress="hidden")
    prompt_box.change(
        lambda model_id, text: word_hint(controls.entry_by_id(policy, model_id), text),
        [model_box, prompt_box],
        words,
        queue=False,
        show_progress="hidden",
        api_name=False,
    )
    settable = {
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
        "num_images": num_images,
        "negative": negative,
        "sampler": sampler,
        "previewer": previewer,
    }
    model_box.input(
        lambda model_id, text: _model_chosen(policy, model_id, text),
        [model_box, prompt_box],
        [
            backend,
            *[settable[name] for name in controls.CONTROLS],
            about,
            words,
            button,
            options,
            preview,
        ],
        queue=False,
        show_progress="hidden",
        api_name=False,
    )
    for dropdown in (sampler, previewer):
        dropdown.input(
            controls.options_json, [sampler, previewer], options, queue=False, api_name=False
        )
    if image_box is not None:  # the strength slider is shown while there is a picture
        image_box.change(
            lambda picture: gr.Slider(visible=picture is not None),
            image_box,
            strength,
            queue=False,
            show_progress="hidden",
            api_name=False,
        )
    return GenerateTab(
        prompt_box, button, stop, model_box, backend, preview, run, image_box, strength
    )


def _generate_for(policy: Policy):
    """The ``/generate`` event's function under ``policy`` (a named function: Gradio shows a
    function's own name and signature on the API page, never ``functools.partial``'s)."""

    def generate(
        backend_id: str,
        model: str,
        prompt: str,
        negative_prompt: str,
        steps: float,
        guidance: float,
        seed: float,
        width: float,
        height: float,
        num_images: float,
        options_json: str = "",
    ):
        yield from generate_run(
            policy,
            backend_id,
            model,
            prompt,
            negative_prompt,
            steps,
            guidance,
            seed,
            width,
            height,
            num_images,
            options_json,
        )

    generate.__doc__ = GENERATE_DESCRIPTION
    return generate


def _edit_for(policy: Policy):
    """The ``/edit`` event's function under ``policy`` (see ``_generate_for``)."""

    def edit(
        backend_id: str,
        model: str,
        prompt: str,
        negative_prompt: str,
        steps: float,
        guidance: float,
        seed: float,
        num_images: float,
        options_json: str,
        image: Any,
        strength: float,
    ):
        try:
            picture = uploaded_image(image, policy.limits.max_input_bytes)
        except ValueError as error:
            refused = RunState(status="error", message=str(error), reason="invalid_request")
            yield refused
            raise_failed(refused)
            return
        yield from generate_run(
            policy,
            backend_id,
            model,
            prompt,
            negative_prompt,
            steps,
            guidance,
            seed,
            None,  # the result has the input's size
            None,
            num_images,
            options_json,
            init_image=picture,
            strength=strength,
        )

    edit.__doc__ = EDIT_DESCRIPTION
    return edit


def uploaded_image(value: Any, max_bytes: int) -> bytes:
    """The file bytes of the picture a visitor uploaded through the Edit tab's image box.

    Gradio hands the event the upload as file data whose path it has checked is in its own
    upload folder (a path a visitor names elsewhere is refused before this runs); at most
    ``max_bytes + 1`` bytes are read, so a larger file is refused by the request's validation
    without being read whole. The bytes are decoded by the request (format, pixels), as an
    API client's data URL is."""
    path = value.get("path") if isinstance(value, dict) else None
    if not path:
        raise ValueError(
            "No input image: upload a picture (PNG, JPEG or WebP) to edit, or use Generate "
            "to make one from a prompt."
        )
    with open(path, "rb") as file:
        return file.read(max_bytes + 1)


def generate_run(
    policy: Policy,
    backend_id: Any,
    model: Any,
    prompt: Any,
    negative_prompt: Any,
    steps: Any,
    guidance: Any,
    seed: Any,
    width: Any,
    height: Any,
    num_images: Any,
    options_json: Any = "",
    *,
    init_image: Any = None,
    strength: Any = None,
):
    """Stream one run, sending only what the chosen model takes; a failure reads as a short
    sentence (``controls.plain_error``).

    The values arrive as sent (the event does not preprocess them), so that every malformed
    one is refused by the request validation naming its field, and the policy checks them."""
    try:
        options = controls.parse_options(options_json)
    except ValueError as error:
        refused = RunState(status="error", message=str(error), reason="invalid_request")
        yield refused
        raise_failed(refused)  # an API call ends as an error, naming the fix
        return
    fields = {
        "prompt": prompt,
        "model": model or None,
        "steps": steps,
        "width": width,
        "height": height,
        "num_images": num_images,
        "seed": controls.request_seed(seed),
        "options": options,
        "guidance": guidance,
        "negative_prompt": negative_prompt,
    }
    if init_image is not None:  # an edit: the input picture and how much of it is remade
        fields.update(init_image=init_image, strength=strength)
    chosen = controls.entry_by_id(policy, model) if isinstance(model, str) else None
    overtaken = backend_id in policy.backends() and backend_id != getattr(chosen, "backend", None)
    if chosen is not None and overtaken and chosen.id == model:
        # The model names its entry, and so its backend: the page's hidden backend box and
        # settings follow the model list by a round trip, which a quick click on Generate can
        # overtake. The settings sent are then the previous model's: this model's own apply,
        # as the page would have shown them. A backend this app does not offer is refused.
        backend_id = chosen.backend
        kept = ("prompt", "model", "seed", "init_image", "strength")
        fields = {name: value for name, value in fields.items() if name in kept}
    if isinstance(backend_id, str):  # the chosen model's own: hidden controls send values too
        fields = accepted_fields(backend_id, fields, policy=policy, registry=get_registry())
    last = None
    try:
        for state in stream(str(backend_id), policy=policy, **fields):
            last = controls.plain_error(state)
            yield last
    except gr.Error:
        if last is not None and last.status == "error":
            raise_failed(last)  # the API call ends with the sentence the page shows
        raise


def pick_seed(seed: Any, random_each_run: bool, backend_id: Any, request: gr.Request):
    """The seed the next run uses, and Generate turned into Stop.

    A new random seed when asked (or when the box holds none), within the seeds the chosen
    backend accepts, else the box's own. While this session's previous run is still going,
    everything is left alone: that run keeps its seed, and the new one is refused by the
    one-run rule."""
    session = session_of(request)
    if session and runs_of_session(session):
        return gr.skip(), gr.skip(), gr.skip()
    running = (gr.Button(visible=False), gr.Button(visible=True))
    if random_each_run or seed is None or seed < 0:
        chosen = get_registry().backends().get(backend_id) if isinstance(backend_id, str) else None
        # the capabilities known now (never a network call): a remote app's own once asked
        new = draw_seed(chosen.capabilities.seed_range) if chosen else draw_seed()
        return new, *running
    return gr.skip(), *running


def _run_ended(backend_id: Any):
    return gr.Button(visible=True), gr.Button(visible=False)


def _stop_runs(request: gr.Request) -> None:
    """Stop: every run of the caller's session (never anyone else's); each ends Cancelled."""
    session = session_of(request)
    if session is not None:
        stop_session_runs(session)


def _model_chosen(policy: Policy, model_id: Any, prompt: Any) -> list:
    """Everything that follows the model: its backend, its controls, its note, the words
    hint, Generate (off where it cannot run), the options (its own), and a cleared stage (a
    previous model's error is no longer true)."""
    entry = controls.entry_by_id(policy, model_id)
    if entry is None:
        return [gr.skip()] * (len(controls.CONTROLS) + 6)
    settings = controls.control_settings(policy, entry.backend, entry.id)
    if settings is None:
        updates = [gr.skip()] * len(controls.CONTROLS)
    else:
        kinds = {"negative": gr.Textbox, "sampler": gr.Dropdown, "previewer": gr.Dropdown}
        updates = [kinds.get(name, gr.Slider)(**settings[name]) for name in controls.CONTROLS]
    usable = controls.unavailable_reason(entry.backend) is None
    return [
        entry.backend,
        *updates,
        controls.entry_note(entry),
        word_hint(entry, prompt),
        gr.Button(interactive=usable),
        "",
        RunState(status="idle", model=entry.id),
    ]


def word_hint(entry: CatalogueEntry | None, prompt: Any) -> str:
    """For the bundled shapes model: what it draws, the words of ``prompt`` it does not know,
    and what to write when the prompt names no shape (``bundled.shapes.words``). Empty for any
    other model (its vocabulary is not known here)."""
    if entry is None or not _is_shapes(entry):
        return ""
    from .bundled.shapes.words import prompt_hint, unknown_words

    text = prompt if isinstance(prompt, str) else ""
    advice = prompt_hint(text) if text.strip() else None
    if advice:  # names no shape: what it would draw, the words it does not know, an example
        return f"**Nothing to draw here.** {advice}"
    ignored = unknown_words(text)
    if not ignored:
        return "This model draws one shape in a colour on a background of another colour."
    shown = ", ".join(f"“{word}”" for word in ignored[:8])
    return (
        f"**Not in this model's words:** {shown}: it ignores them. It knows colours, shapes "
        "(circle, square, triangle, star, heart), sizes and places, e.g. “a red circle on a "
        "blue background”."
    )


def _is_shapes(entry: CatalogueEntry) -> bool:
    from .bundled.shapes import model_dir

    return str(entry.model) == str(model_dir())


def input_image_box(image: Any, height: int) -> gr.Image:
    """The picture an edit starts from (the Edit and Compare-edits tabs): an upload or a paste,
    handed to the event as a file path the upload guard bounded (see ``uploaded_image``)."""
    return gr.Image(
        value=image,
        label="Input image",
        type="filepath",
        sources=["upload", "clipboard"],
        height=height,
        elem_classes=["diffusion-input-image"],
    )


def image_entries(policy: Policy) -> list[CatalogueEntry]:
    """The catalogue's entries whose model takes an input image (image-to-image or
    instruction editing), judged by the model's capabilities. An entry whose capabilities
    cannot be read now (its backend missing, a failed listing) is left out."""
    taken = []
    for entry in policy.catalogue:
        caps = _edit_capabilities(entry)
        if caps is not None and (caps.image_to_image or caps.instruction_editing):
            taken.append(entry)
    return taken


def text_entries(policy: Policy) -> list[CatalogueEntry]:
    """The catalogue's entries that make an image from a prompt alone: all but the models
    that only edit (``text_to_image=False``, such as Inference's editing models), which the
    Generate and Compare tabs do not offer."""
    return [
        entry
        for entry in policy.catalogue
        if (caps := _edit_capabilities(entry)) is None or caps.text_to_image
    ]


def _edit_capabilities(entry: CatalogueEntry) -> Capabilities | None:
    """The entry's model's capabilities, where its backend takes an input image at all; None
    for a backend that takes none (a remote listing, perhaps offline, is not read to build a
    page) or whose model's capabilities cannot be read now."""
    try:
        backend = get_registry().get(entry.backend)
        if not (backend.capabilities.image_to_image or backend.capabilities.instruction_editing):
            return None
        return backend.capabilities_for(entry.model)
    except Exception:
        return None


def _first_usable(policy: Policy, catalogue: list[CatalogueEntry] | None = None) -> CatalogueEntry:
    entries = list(policy.catalogue) if catalogue is None else catalogue
    usable = [e for e in entries if controls.unavailable_reason(e.backend) is None]
    return (usable or entries)[0]
