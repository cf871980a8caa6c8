"""How to call one endpoint of a remote Gradio app: which endpoint, which parameter each request
field goes to, which output holds the image, and what that allows (``Capabilities``, models).

Detected from the app's API description (``client.view_api(return_format="dict")``), with the
endpoint's settings taking precedence. Problems are ``RemoteFailure``s that name the
parameters, outputs or endpoints the app does have, and the option that fixes it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...backend import SEED_RANGE, Capabilities, ModelInfo
from ...request import GenerationRequest
from ..remote_failure import RemoteFailure
from .settings import FIELDS, GradioSettings

PREVIEW_COMPONENT = "diffusionpreview"
IMAGE_COMPONENTS = ("image", "gallery")
APP_MODEL = "default"
"""The one model listed for an app whose endpoint takes no model parameter."""
SYNONYMS: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "positive_prompt", "text", "prompt_text", "input_text", "caption"),
    "negative_prompt": ("negative_prompt", "negative", "neg_prompt", "negative_text"),
    "model": ("model", "model_id", "model_name", "checkpoint", "ckpt"),
    "steps": ("steps", "num_inference_steps", "num_steps", "inference_steps", "sampling_steps"),
    "guidance": ("guidance", "guidance_scale", "cfg", "cfg_scale"),
    "seed": ("seed",),
    "width": ("width",),
    "height": ("height",),
    "num_images": ("num_images", "num_images_per_prompt", "batch_size", "num_outputs", "images"),
    "init_image": (
        "init_image",
        "input_image",
        "image",
        "source_image",
        "image_input",
        "input_img",
        "init_img",
        "img",
        "upload_the_image_for_editing",
        "input",
    ),
    "strength": ("strength", "denoising_strength", "denoise", "image_strength", "prompt_strength"),
}
"""Parameter names (or labels) recognised as each request field, in snake case. The input image
goes only to an image input (``gr.Image``), sent as a file (``gradio_client.handle_file``)."""
IMAGE_INPUT = "image"
"""The component of an input that takes the request's ``init_image``."""
_RANGE = re.compile(r"between\s+(-?[\d.]+)\s+and\s+(-?[\d.]+)")


@dataclass(frozen=True)
class Parameter:
    """One parameter of the remote endpoint, as its API description gives it."""

    name: str
    label: str
    component: str
    has_default: bool
    default: Any
    schema: Mapping[str, Any]
    props: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The input component's properties from the app's ``/config`` (a number box's
    ``minimum`` and ``maximum`` appear only there), or empty when they cannot be matched."""

    @classmethod
    def read(
        cls, info: Mapping[str, Any], index: int, props: Mapping[str, Any] | None = None
    ) -> Parameter:
        label = str(info.get("label") or f"argument {index}")
        return cls(
            name=str(info.get("parameter_name") or label),
            label=label,
            component=str(info.get("component") or ""),
            has_default=bool(info.get("parameter_has_default")),
            default=info.get("parameter_default"),
            schema=info.get("type") if isinstance(info.get("type"), dict) else {},
            props=props or {},
        )

    def bounds(self) -> tuple[float | None, float | None]:
        """The (minimum, maximum) the app enforces, each None where it declares none: the
        component's properties, else a slider's range in the API description's text."""
        low, high = (_number(self.props.get(key)) for key in ("minimum", "maximum"))
        if low is None and high is None:
            described = self.range_described()
            return described if described else (None, None)
        return low, high

    def range(self) -> tuple[float, float] | None:
        """A slider's (minimum, maximum), when the app declares both."""
        low, high = self.bounds()
        return (low, high) if low is not None and high is not None else None

    def range_described(self) -> tuple[float, float] | None:
        match = _RANGE.search(str(self.schema.get("description", "")))
        return (float(match[1]), float(match[2])) if match else None

    def shown(self) -> str:
        return f"'{self.name}' ({self.component or 'unknown component'})"


@dataclass(frozen=True)
class RemoteApi:
    """The endpoint to call and how (see the module docstring)."""

    api_name: str
    mode: Literal["preview", "image"]
    parameters: tuple[Parameter, ...]
    inputs: Mapping[str, str]
    """Request field -> the remote parameter it is sent to."""
    fixed: Mapping[str, Any]
    output_index: int
    output_count: int
    output_label: str
    capabilities: Capabilities
    models: tuple[ModelInfo, ...]
    stop_api: str | None = None
    """The remote DiffusionPreview's Stop event, which stops the remote run within a step."""
    finish_api: str | None = None
    """Its "Use this preview" event, which finishes the remote run with its current preview."""
    streams: bool = False
    """The endpoint is a generator (``/config`` says so): every value before its last is a
    step's image, as the live-preview Spaces yield them."""
    seed_output: int | None = None
    """The output that returns the seed the app used (a number or slider labelled seed)."""
    randomize: str | None = None
    """The app's "randomize seed" switch, turned off when a request gives a seed."""

    def arguments(self, request: GenerationRequest, image_file: Any = None) -> list[Any]:
        """The positional arguments of one call, in the endpoint's parameter order;
        ``image_file`` is the request's input image as ``gradio_client.handle_file`` gives it."""
        values: dict[str, Any] = {
            "init_image": image_file,
            "strength": request.strength,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "model": request.model,
            "steps": request.steps,
            "guidance": request.guidance,
            "seed": request.seed,
            "width": request.width,
            "height": request.height,
            "num_images": request.num_images,
        }
        field_of = {name: field for field, name in self.inputs.items()}
        arguments = []
        for parameter in self.parameters:
            field = field_of.get(parameter.name)
            if parameter.name in self.fixed:
                arguments.append(self.fixed[parameter.name])
            elif field is not None and values[field] is not None:
                arguments.append(values[field])
            elif parameter.name == self.randomize and "seed" in self.inputs:
                # the request's seed goes to the app (drawn here when it gave none)
                arguments.append(request.seed is None)
            else:
                arguments.append(parameter.default)
        return arguments

    def pick(self, value: Any) -> Any:
        """The chosen output out of one value the client returns (a tuple for several)."""
        if self.output_count == 1 or not isinstance(value, tuple | list):
            return value
        return value[self.output_index] if self.output_index < len(value) else None

    def seed_used(self, value: Any) -> int | None:
        """The seed the app reports it used, out of one value (None when it reports none)."""
        if self.seed_output is None or not isinstance(value, tuple | list):
            return None
        seed = value[self.seed_output] if self.seed_output < len(value) else None
        number = isinstance(seed, int | float) and not isinstance(seed, bool)
        return int(seed) if number and math.isfinite(seed) and seed == int(seed) else None

    @property
    def takes_prompt(self) -> bool:
        return "prompt" in self.inputs

    @property
    def takes_image(self) -> bool:
        return "init_image" in self.inputs


def detect(
    info: Mapping[str, Any],
    settings: GradioSettings,
    where: str,
    models: list[str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> RemoteApi:
    """The ``RemoteApi`` of the app described by ``info`` (``view_api`` as a dict) and
    ``config`` (its ``/config``, for the DiffusionPreview's Stop and finish events)."""
    named: Mapping[str, Any] = info.get("named_endpoints") or {}
    api_name = settings.api_name or _choose_endpoint(named, where)
    if api_name not in named:
        raise _config(
            where,
            f"has no API endpoint '{api_name}'; its endpoints are: {_listed(named)}",
            "set options.api_name to one of them",
        )
    described = named[api_name]
    listed = list(described.get("parameters") or [])
    props = _input_props(config or {}, api_name, len(listed))
    parameters = tuple(Parameter.read(p, i, props[i]) for i, p in enumerate(listed))
    returns = list(described.get("returns") or [])
    output_index = _choose_output(returns, settings.output, api_name, where)
    output = returns[output_index]
    component = str(output.get("component") or "").lower()
    mode = settings.mode
    if mode == "auto":
        mode = "preview" if component == PREVIEW_COMPONENT else "image"
    inputs = _map_inputs(parameters, settings, api_name, where)
    stop_api = finish_api = None
    if mode == "preview" and component == PREVIEW_COMPONENT:
        stop_api, finish_api = _preview_events(config or {}, named, api_name, output_index)
    streams = mode == "image" and _is_generator(config or {}, api_name)
    randomize = _randomize_switch(parameters, inputs, settings)
    capabilities = _capabilities(mode, parameters, inputs, settings, where, finish_api, streams)
    return RemoteApi(
        api_name=api_name,
        mode=mode,
        parameters=parameters,
        inputs=inputs,
        fixed=dict(settings.fixed),
        output_index=output_index,
        output_count=len(returns),
        output_label=str(output.get("label") or output_index),
        capabilities=capabilities,
        models=_models(parameters, inputs, models, api_name, where),
        stop_api=stop_api,
        finish_api=finish_api,
        streams=streams,
        seed_output=_seed_output(returns, output_index),
        randomize=randomize,
    )


def _is_generator(config: Mapping[str, Any], api_name: str) -> bool:
    """Whether ``api_name``'s handler is a generator (its values before the last stream)."""
    for dependency in config.get("dependencies") or []:
        if isinstance(dependency, dict) and "/" + str(dependency.get("api_name")) == api_name:
            types = dependency.get("types")
            return isinstance(types, dict) and types.get("generator") is True
    return False


def _seed_output(returns: list[Mapping[str, Any]], image_output: int) -> int | None:
    """The output beside the image that returns the seed used: a number (or a slider, as the
    FLUX Spaces write it) labelled as a seed, else the only number output."""
    numbers = [
        index
        for index, entry in enumerate(returns)
        if index != image_output and _component(entry) in ("number", "slider")
    ]
    seeds = [i for i in numbers if "seed" in _snake(str(returns[i].get("label") or ""))]
    if len(seeds) == 1:
        return seeds[0]
    return numbers[0] if len(numbers) == 1 and not seeds else None


def _randomize_switch(
    parameters: tuple[Parameter, ...], inputs: Mapping[str, str], settings: GradioSettings
) -> str | None:
    """The checkbox that makes the app draw its own seed ("Randomize seed"), when the seed
    is one of the fields sent and neither the settings nor a field take the checkbox."""
    if "seed" not in inputs:
        return None
    taken = set(inputs.values()) | set(settings.fixed)
    for parameter in parameters:
        words = f"{_snake(parameter.name)} {_snake(parameter.label)}"
        checkbox = parameter.component.lower() == "checkbox"
        if checkbox and parameter.name not in taken and "random" in words:
            return parameter.name
    return None


def _input_props(config: Mapping[str, Any], api_name: str, count: int) -> list[Mapping[str, Any]]:
    """The properties of the ``count`` input components of ``api_name``, in parameter order,
    from the app's ``/config`` (State inputs are not parameters); empty ones when the config
    does not describe that event's inputs as the API does."""
    empty: list[Mapping[str, Any]] = [{} for _ in range(count)]
    dependencies = [d for d in config.get("dependencies") or [] if isinstance(d, dict)]
    run = next((d for d in dependencies if "/" + str(d.get("api_name")) == api_name), None)
    if run is None:
        return empty
    components = {c.get("id"): c for c in config.get("components") or [] if isinstance(c, dict)}
    shown = [
        components.get(i, {})
        for i in run.get("inputs") or []
        if str(components.get(i, {}).get("type", "")).lower() != "state"
    ]
    if len(shown) != count:
        return empty
    return [c.get("props") if isinstance(c.get("props"), dict) else {} for c in shown]


def _preview_events(
    config: Mapping[str, Any], named: Mapping[str, Any], api_name: str, output_index: int
) -> tuple[str | None, str | None]:
    """The API names of the Stop and finish events of the DiffusionPreview that ``api_name``
    streams into (``DiffusionPreview.attach_run`` wires them), found by what triggers them."""
    dependencies = [d for d in config.get("dependencies") or [] if isinstance(d, dict)]
    run = next((d for d in dependencies if "/" + str(d.get("api_name")) == api_name), None)
    if run is None:
        return None, None
    types = {c.get("id"): str(c.get("type", "")).lower() for c in config.get("components") or []}
    shown = [i for i in run.get("outputs") or [] if types.get(i) != "state"]
    if output_index >= len(shown):
        return None, None
    preview_id = shown[output_index]

    def triggered_by(event: str) -> str | None:
        for dependency in dependencies:
            name = "/" + str(dependency.get("api_name"))
            if [preview_id, event] in (dependency.get("targets") or []) and name in named:
                return name
        return None

    return triggered_by("stop"), triggered_by("finish")


def _config(where: str, problem: str, fix: str) -> RemoteFailure:
    return RemoteFailure(f"The Gradio app {where} {problem}. Fix: {fix}.", "unavailable")


def _listed(named: Mapping[str, Any]) -> str:
    return ", ".join(named) or "none"


def _component(entry: Mapping[str, Any]) -> str:
    return str(entry.get("component") or "").lower()


def _choose_endpoint(named: Mapping[str, Any], where: str) -> str:
    """The only endpoint with a DiffusionPreview output, else the only one with an image. An
    endpoint streaming one run (one DiffusionPreview output) goes before one streaming several
    (a compare's panels, as this project's demo has beside its generate endpoint), and of
    those, one taking no input image (text-to-image) before one that does (an edit endpoint,
    as the demo's ``/edit``)."""
    single_run = [
        name
        for name, described in named.items()
        if [_component(r) for r in described.get("returns") or []].count(PREVIEW_COMPONENT) == 1
    ]
    if len(single_run) == 1:
        return single_run[0]
    text_only = [
        name
        for name in single_run
        if not any(_component(p) == "image" for p in named[name].get("parameters") or [])
    ]
    if len(text_only) == 1:
        return text_only[0]
    for wanted in ((PREVIEW_COMPONENT,), IMAGE_COMPONENTS):
        found = [
            name
            for name, described in named.items()
            if any(_component(r) in wanted for r in described.get("returns") or [])
        ]
        if len(found) == 1:
            return found[0]
        if found:
            raise _config(
                where,
                f"has several endpoints that could make images: {', '.join(found)}",
                "set options.api_name to the one to call",
            )
    raise _config(
        where,
        f"has no API endpoint with an image, gallery or DiffusionPreview output (its endpoints "
        f"are: {_listed(named)})",
        "set options.api_name and options.output to the endpoint and output holding the image",
    )


def _choose_output(
    returns: list[Mapping[str, Any]], wanted: int | str | None, api_name: str, where: str
) -> int:
    shown = ", ".join(
        f"{i}: '{r.get('label')}' ({r.get('component')})" for i, r in enumerate(returns)
    )
    if isinstance(wanted, int):
        if 0 <= wanted < len(returns):
            return wanted
        raise _config(
            where,
            f"has no output {wanted} on {api_name}; its outputs are: {shown or 'none'}",
            "set options.output to one of those indexes or labels",
        )
    if isinstance(wanted, str):
        for index, entry in enumerate(returns):
            if str(entry.get("label", "")).lower() == wanted.lower():
                return index
        raise _config(
            where,
            f"has no output labelled '{wanted}' on {api_name}; its outputs are: {shown or 'none'}",
            "set options.output to one of those indexes or labels",
        )
    for kinds in ((PREVIEW_COMPONENT,), IMAGE_COMPONENTS):
        for index, entry in enumerate(returns):
            if _component(entry) in kinds:
                return index
    raise _config(
        where,
        f"returns no image, gallery or DiffusionPreview from {api_name} (its outputs are: "
        f"{shown or 'none'})",
        "set options.output to the output holding the image",
    )


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _map_inputs(
    parameters: tuple[Parameter, ...], settings: GradioSettings, api_name: str, where: str
) -> dict[str, str]:
    """Request field -> remote parameter: the settings' choices, then recognised names."""
    names = [p.name for p in parameters]
    shown = ", ".join(p.shown() for p in parameters) or "none"
    for name in [*settings.fixed, *(v for v in settings.inputs.values() if v)]:
        if name not in names:
            raise _config(
                where,
                f"has no parameter '{name}' on {api_name}; its parameters are: {shown}",
                "use those names in options.inputs and options.fixed",
            )
    inputs = {field: name for field, name in settings.inputs.items() if name}
    taken = set(inputs.values()) | set(settings.fixed)
    for field in FIELDS:
        if field in settings.inputs:
            continue  # chosen (or switched off with null) by the settings
        for parameter in parameters:
            if parameter.name in taken:
                continue
            if (field == "init_image") != (parameter.component.lower() == IMAGE_INPUT):
                continue  # the picture goes to an image input, and only the picture does
            if (
                _snake(parameter.name) in SYNONYMS[field]
                or _snake(parameter.label) in (SYNONYMS[field])
            ):
                inputs[field] = parameter.name
                taken.add(parameter.name)
                break
    if "prompt" not in inputs and "prompt" not in settings.inputs:
        texts = [p for p in parameters if p.component.lower() == "textbox" and p.name not in taken]
        if len(texts) == 1:
            inputs["prompt"] = texts[0].name
            taken.add(texts[0].name)
    if "init_image" not in inputs and "init_image" not in settings.inputs:
        images = [p for p in parameters if p.component.lower() == IMAGE_INPUT]
        if len(images) == 1 and images[0].name not in taken:
            inputs["init_image"] = images[0].name  # an edit Space's one picture input
            taken.add(images[0].name)
    if "strength" in inputs and "init_image" not in inputs:
        del inputs["strength"]  # a strength without a picture to apply it to is sent nowhere
    missing = [p for p in parameters if p.name not in taken and not p.has_default]
    if missing:
        raise _config(
            where,
            f"needs {', '.join(p.shown() for p in missing)} on {api_name}, which no request "
            "field is sent to and which have no default",
            "set options.fixed (a value always sent) or options.inputs (a request field) for "
            "each of them",
        )
    return inputs


def _capabilities(
    mode: str,
    parameters: tuple[Parameter, ...],
    inputs: Mapping[str, str],
    settings: GradioSettings,
    where: str,
    finish_api: str | None = None,
    streams: bool = False,
) -> Capabilities:
    """What requests to this endpoint may ask for, from its parameters' defaults and ranges."""
    by_name = {p.name: p for p in parameters}
    param = {field: by_name[name] for field, name in inputs.items()}
    base = Capabilities()
    caps: dict[str, Any] = {
        # a generator streams step images (relayed as Steps); options.capabilities says
        # otherwise for one that yields something else before its image
        "step_events": mode == "preview" or streams,
        "step_previews": mode == "preview" or streams,
        "negative_prompt": "negative_prompt" in param,
        "seed": "seed" in param,
        "guidance": "guidance" in param,
        "max_batch": 1,
        "cancel": True,
        "finish_early": finish_api is not None,
        "any_model": False,
        # An image input with a strength is image-to-image; without one, the app edits the
        # picture as the prompt says (FLUX.1 Kontext and Qwen-Image-Edit Spaces).
        "image_to_image": "init_image" in param and "strength" in param,
        "instruction_editing": "init_image" in param and "strength" not in param,
    }
    if "steps" in param:
        low, high = _int_range(param["steps"], base.steps_range)
        caps["steps_range"] = (max(1, low), high)
        caps["default_steps"] = _clamp(_int(param["steps"].default, base.default_steps), low, high)
    if "guidance" in param:
        bounds = param["guidance"].range() or base.guidance_range
        caps["guidance_range"] = bounds
        default = param["guidance"].default
        default = float(default) if isinstance(default, int | float) else base.default_guidance
        caps["default_guidance"] = _clamp(default, *bounds)
    sides = [param[f] for f in ("width", "height") if f in param]
    if sides:
        ranges = [_int_range(p, (base.min_size, base.max_size)) for p in sides]
        low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
        caps["min_size"], caps["max_size"] = max(1, low), max(1, low, high)
        low, high = caps["min_size"], caps["max_size"]
        caps["default_size"] = tuple(
            _clamp(_int(param[f].default, 512) if f in param else 512, low, high)
            for f in ("width", "height")
        )
        caps["size_multiple"] = 8 if all(side % 8 == 0 for side in (low, high)) else 1
    if "num_images" in param:
        caps["max_batch"] = max(1, _int_range(param["num_images"], (1, 4))[1])
    if "seed" in param:
        seeds = _seed_range(param["seed"])
        if seeds is not None:
            caps["seed_range"] = seeds
    caps.update(settings.capabilities)
    try:
        return Capabilities(**caps)
    except ValueError as error:
        raise _config(
            where,
            f"gives limits that do not fit together ({error})",
            "set options.capabilities on the endpoint to consistent limits and defaults",
        ) from None


def _seed_range(parameter: Parameter) -> tuple[int, int] | None:
    """The seeds the app's seed input accepts, within ours (0 to 2**32 - 1), or None when it
    declares no maximum. Gradio refuses a value above a slider's or number box's maximum
    ("Value ... is greater than maximum value ..."), so a seed outside would fail the run."""
    low, high = parameter.bounds()
    if high is None:
        return None
    first = max(SEED_RANGE[0], math.ceil(low) if low is not None else 0)
    last = min(SEED_RANGE[1], math.floor(high))
    return (first, last) if first <= last else None


def _number(value: Any) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def _int(value: Any, fallback: int) -> int:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return int(value) if number else fallback


def _int_range(parameter: Parameter, fallback: tuple[int, int]) -> tuple[int, int]:
    bounds = parameter.range()
    return (int(bounds[0]), int(bounds[1])) if bounds else fallback


def _clamp(value, low, high):
    return min(max(value, low), high)


def _models(
    parameters: tuple[Parameter, ...],
    inputs: Mapping[str, str],
    configured: list[str] | None,
    api_name: str,
    where: str,
) -> tuple[ModelInfo, ...]:
    """The configured models, else the model parameter's choices or default, else the app's."""
    if configured:
        return tuple(ModelInfo(id=model) for model in configured)
    if "model" not in inputs:
        return (
            ModelInfo(
                id=APP_MODEL,
                name="The app's model",
                description=f"whatever {api_name} of the Gradio app {where} runs",
            ),
        )
    parameter = next(p for p in parameters if p.name == inputs["model"])
    choices = parameter.schema.get("enum")
    if isinstance(choices, list) and choices:
        return tuple(ModelInfo(id=str(choice)) for choice in choices)
    if parameter.has_default and parameter.default not in (None, ""):
        return (ModelInfo(id=str(parameter.default)),)
    raise _config(
        where,
        f"lists no models for its parameter {parameter.shown()} on {api_name}",
        "list the models to offer in the endpoint's 'models'",
    )
