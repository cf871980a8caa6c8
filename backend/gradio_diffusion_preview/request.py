"""GenerationRequest, and its central validation against a backend's capabilities.

Validation runs before any work starts, against the capabilities that hold for the requested
model (the backend's, with the model's own defaults and limits applied). Every error is an
``InvalidRequest`` naming the field, the value, the rule and the backend, with a fix a person can
act on; a backend that cannot run now is a ``BackendUnavailable``. A valid request comes back
resolved: model, size, steps, guidance and seed filled in from the model's or backend's defaults.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import input_image
from .backend import SEED_RANGE, ModelListingError
from .typed_options import OptionProblem, check_options

if TYPE_CHECKING:
    from .backend import Backend, Capabilities
    from .events import FailureReason

MAX_SEED = SEED_RANGE[1]
RANDOM_SEED = -1
"""A seed of -1 asks for a random one (as in Gradio apps and AUTOMATIC1111)."""
RANDOM_SEED_MAX = 2**31 - 1
"""Random seeds stay at or below this where a backend allows more: most apps' seed sliders (FLUX
and SD Spaces) stop here, so a random seed shown to a person can be typed into them too."""
MAX_PROMPT_CHARS = 10_000
MAX_NEGATIVE_PROMPT_CHARS = 10_000
DEFAULT_STRENGTH = 0.75
"""The strength of an image-to-image request that gives none (AUTOMATIC1111's default
denoising strength)."""


class GenerationRequest(BaseModel):
    """One request: text-to-image, or with ``init_image`` image-to-image (with ``mask_image``
    inpainting). ``None`` means "the backend's default".

    ``init_image`` and ``mask_image`` are PIL images, or from the API a data URL or base64 text
    of a PNG, JPEG or WebP file (see ``input_image``; never a path). ``strength`` (0 to 1) is how
    much of the input is remade: 0 keeps it, 1 ignores it; a run does ``int(steps * strength)``
    denoising steps. A mask is white where the picture is to be remade, and has the input's
    size. Without a width and height the output has the input's size."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    num_images: int = 1
    options: dict[str, Any] = Field(default_factory=dict)
    init_image: Any = None
    mask_image: Any = None
    strength: float | None = None

    @field_validator("init_image", "mask_image", mode="before")
    @classmethod
    def _decoded_image(cls, value: Any, info: Any) -> Any:
        """An input image decoded in memory (a data URL or base64 text; never a path)."""
        if value is None or value == "":
            return None
        return input_image.decode(value, info.field_name)

    @field_validator("model", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        """A model folder given as a ``Path`` (as ``bundled.shapes.model_dir()`` returns)."""
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def image_seeds(self, one_per_image: bool = True) -> list[int] | None:
        """The seed of each image of the batch, numbered as every backend numbers them: image
        ``i`` gets ``(seed + i) % 2**32``; with ``one_per_image=False`` (a service that takes one
        seed for the whole batch) every image gets the one seed; ``None`` for a request without
        a seed (a backend declaring ``seed=False``). Use it for ``Started`` and ``Finished``."""
        if self.seed is None:
            return None
        if not one_per_image:
            return [self.seed] * self.num_images
        return [(self.seed + index) % (MAX_SEED + 1) for index in range(self.num_images)]


class RunRefused(Exception):
    """A run refused before it started; ``str()`` is the message to show a person and
    ``reason`` the failure reason (see ``events.FailureReason``) for code."""

    reason: FailureReason = "invalid_request"
    retry_after: float | None = None


class InvalidRequest(RunRefused, ValueError):
    """A request that breaks a rule; ``str()`` is the message to show a person."""

    def __init__(self, backend: str, field: str, value: Any, rule: str, fix: str) -> None:
        self.backend, self.field, self.value, self.rule, self.fix = backend, field, value, rule, fix
        super().__init__(
            f"Invalid request for backend '{backend}': {field}={value!r} is not allowed "
            f"({rule}). Fix: {fix}"
        )


class BackendUnavailable(RunRefused):
    """The backend cannot run now (no token, offline, not configured, its model listing
    failed); the request itself may be fine."""

    def __init__(self, backend: str, message: str, reason: FailureReason = "unavailable") -> None:
        self.backend, self.reason = backend, reason
        super().__init__(message)


def build_request(backend: Backend, fields: dict[str, Any]) -> GenerationRequest:
    """Build a request from loose fields (UI or API input), turning type errors into
    ``InvalidRequest``s that name the field."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "request"
        value = first.get("input")
        problem = (first.get("ctx") or {}).get("error")
        if isinstance(problem, input_image.ImageProblem):
            raise InvalidRequest(
                backend.id, field, problem.shown, problem.rule, problem.fix
            ) from None
        if first["type"] == "extra_forbidden":
            known = ", ".join(GenerationRequest.model_fields)
            raise InvalidRequest(
                backend.id,
                field,
                value,
                "unknown request field",
                f"use only these fields: {known}; backend-specific settings go in 'options'.",
            ) from None
        raise InvalidRequest(
            backend.id, field, value, first["msg"], f"give {field} a value of the right type."
        ) from None


def random_seed(seed_range: tuple[int, int] = SEED_RANGE) -> int:
    """A random seed within ``seed_range`` (a backend's ``Capabilities.seed_range``), at most
    ``RANDOM_SEED_MAX`` where the range reaches that far."""
    low, high = seed_range
    top = max(low, min(high, RANDOM_SEED_MAX))
    return low + secrets.randbelow(top - low + 1)


def validate_request(
    request: GenerationRequest, backend: Backend, caps: Capabilities | None = None
) -> GenerationRequest:
    """Check ``request`` against the backend and the capabilities that hold for its model
    (``backend.capabilities_for``, or ``caps``: a public app's, held to its policy, so a fix
    names the range the app allows), and return it with defaults filled.

    Raises ``InvalidRequest`` for a request that breaks a rule, and ``BackendUnavailable`` when
    the backend cannot run now (its ``availability()``, or a model listing that failed).
    """
    bid = backend.id

    def fail(field: str, value: Any, rule: str, fix: str) -> NoReturn:
        raise InvalidRequest(bid, field, value, rule, fix)

    if not request.prompt.strip():
        fail("prompt", request.prompt, "the prompt is empty", "describe the image you want.")
    for name in ("prompt", "negative_prompt"):
        at = lone_surrogate(getattr(request, name))
        if at is not None:  # it cannot be sent back as UTF-8, nor tokenized: never echoed
            fail(
                name,
                f"<text with an invalid character at position {at + 1}>",
                "text must be valid Unicode (a lone surrogate such as \\ud800 is not)",
                f"remove character {at + 1} of the {name.replace('_', ' ')}.",
            )
    if len(request.prompt) > MAX_PROMPT_CHARS:
        fail(
            "prompt",
            f"<{len(request.prompt)} characters>",
            f"at most {MAX_PROMPT_CHARS} characters",
            "shorten the prompt.",
        )

    if len(request.negative_prompt) > MAX_NEGATIVE_PROMPT_CHARS:
        fail(
            "negative_prompt",
            f"<{len(request.negative_prompt)} characters>",
            f"at most {MAX_NEGATIVE_PROMPT_CHARS} characters",
            "shorten the negative prompt.",
        )

    availability = backend.availability()
    if not availability.usable:
        raise BackendUnavailable(
            bid,
            availability.message or f"Backend '{bid}' cannot run now ({availability.state}).",
            availability.reason,
        )

    try:  # listing models may need a network or a cache; that must not crash the caller
        model = request.model or backend.default_model()
        offered = None if backend.capabilities.any_model else [m.id for m in backend.list_models()]
    except ModelListingError as error:
        raise BackendUnavailable(
            bid,
            error.refusal(),
            error.reason,  # type: ignore[arg-type]
        ) from None
    if model is None:
        fail("model", request.model, "this backend has no default model", "name a model.")
    if offered is not None and model not in offered:
        fail(
            "model",
            model,
            "not one of the models this backend offers",
            f"choose one of: {', '.join(offered) or '(none listed)'}.",
        )
    caps = caps or backend.capabilities_for(model)
    # Limits a model sets itself are named as the model's, so the fix is clear.
    own = backend.model_info(model)
    own_fields = set(own.defaults.overrides()) if own and own.defaults else set()

    def scope(*fields: str) -> str:
        return f" for model '{model}'" if own_fields & set(fields) else ""

    edit = _checked_edit(request, model, caps, own_fields, backend.capabilities, fail)

    if request.negative_prompt and not caps.negative_prompt:
        fail(
            "negative_prompt",
            request.negative_prompt,
            f"model '{model}' takes no negative prompt"
            if "negative_prompt" in own_fields
            else "this backend has no negative prompt",
            "leave negative_prompt empty.",
        )

    low, high = caps.steps_range
    steps = caps.default_steps if request.steps is None else request.steps
    if not caps.steps:
        if request.steps is not None:
            fail(
                "steps",
                request.steps,
                "this backend takes no number of steps",
                "leave steps unset.",
            )
        steps = None
    elif not low <= steps <= high:
        fail(
            "steps",
            steps,
            f"steps must be from {low} to {high}{scope('steps_range')}",
            f"use a number of steps from {low} to {high}.",
        )

    guidance = request.guidance
    if guidance is not None and not caps.guidance:
        fail(
            "guidance",
            guidance,
            f"model '{model}' takes no guidance scale"
            if "guidance" in own_fields
            else "this backend takes no guidance scale",
            "leave guidance unset.",
        )
    if guidance is None and caps.guidance:
        guidance = caps.default_guidance
    if guidance is not None:
        g_low, g_high = caps.guidance_range
        if not g_low <= guidance <= g_high:
            fail(
                "guidance",
                guidance,
                f"guidance must be from {g_low} to {g_high}{scope('guidance_range')}",
                f"use a guidance scale from {g_low} to {g_high}.",
            )

    seed = request.seed
    if seed == RANDOM_SEED:  # the Gradio and A1111 habit: -1 asks for a random seed
        seed = None
    if seed is not None and not caps.seed:
        fail("seed", seed, "this backend cannot be seeded", "leave seed unset.")
    s_low, s_high = caps.seed_range
    if seed is not None and not s_low <= seed <= s_high:
        declared = "" if caps.seed_range == SEED_RANGE else ", the range this backend declares"
        fail(
            "seed",
            seed,
            f"seeds are whole numbers from {s_low} to {s_high}{declared}",
            f"use a seed from {s_low} to {s_high}, or none for a random one.",
        )
    if seed is None and caps.seed:
        seed = random_seed(caps.seed_range)

    default_w, default_h = caps.default_size
    if request.init_image is not None and not caps.sizes:  # the output has the input's size
        default_w, default_h = input_image.fitted_size(
            request.init_image, caps.size_multiple, caps.min_size, caps.max_size
        )
    width = default_w if request.width is None else request.width
    height = default_h if request.height is None else request.height
    for name, size in () if caps.sizes else (("width", width), ("height", height)):
        if not caps.min_size <= size <= caps.max_size:
            fail(
                name,
                size,
                f"{name} must be from {caps.min_size} to {caps.max_size} pixels"
                f"{scope('min_size', 'max_size')}",
                f"use a {name} from {caps.min_size} to {caps.max_size}.",
            )
        if size % caps.size_multiple:
            nearest = max(caps.min_size, round(size / caps.size_multiple) * caps.size_multiple)
            fail(
                name,
                size,
                f"{name} must be a multiple of {caps.size_multiple}{scope('size_multiple')}",
                f"use {nearest}.",
            )

    if caps.sizes and (width, height) not in caps.sizes:
        listed = ", ".join(f"{w}x{h}" for w, h in caps.sizes)
        fail(
            "size",
            f"{width}x{height}",
            "this backend makes only the sizes it lists",
            f"use one of: {listed} (width x height).",
        )

    if not 1 <= request.num_images <= caps.max_batch:
        fail(
            "num_images",
            request.num_images,
            f"a batch holds 1 to {caps.max_batch} images{scope('max_batch')}",
            f"ask for 1 to {caps.max_batch} images.",
        )

    options = request.options
    if caps.options_model is not None:
        try:
            options = check_options(caps.options_model, request.options)
        except OptionProblem as problem:
            fail(f"options.{problem.name}", problem.value, problem.rule, problem.fix)
    unknown = sorted(set(request.options) - set(caps.options))
    if unknown:  # the deprecated options: a dict of names, values checked by generate
        known = ", ".join(sorted(caps.options)) or "none"
        fail(
            f"options.{unknown[0]}",
            request.options[unknown[0]],
            "not an option this backend understands",
            f"remove it; this backend's options are: {known}.",
        )

    return request.model_copy(
        update={
            "model": model,
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "width": width,
            "height": height,
            "options": options,
            **edit,
        }
    )


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (JSON's ``"\\ud800"``, which no
    UTF-8 encoder takes), or None."""
    return next((i for i, char in enumerate(text) if "\ud800" <= char <= "\udfff"), None)


def _checked_edit(
    request: GenerationRequest,
    model: str,
    caps: Any,
    own_fields: set[str],
    backend_caps: Any,
    fail: Any,
) -> dict[str, Any]:
    """Check the input image, mask and strength against what the model takes; the fields to
    update (the default strength filled in). A refusal names the model where the model's
    flags differ from the backend's (its ``ModelDefaults``, or the backend's per-model
    ``capabilities_for``)."""
    image, mask, strength = request.init_image, request.mask_image, request.strength
    flags = ("image_to_image", "inpainting", "instruction_editing", "text_to_image")
    own = own_fields & set(flags) or any(
        getattr(caps, flag) != getattr(backend_caps, flag) for flag in flags
    )
    who = f"model '{model}'" if own else "this backend"
    if image is None and not caps.text_to_image:
        fail(
            "init_image",
            None,
            f"{who} only edits pictures: it needs an input image",
            "give init_image (an Edit tab's picture), or choose a text-to-image model.",
        )
    if image is None:
        if mask is not None:
            fail(
                "mask_image",
                input_image.describe(mask),
                "a mask needs an input image to apply to",
                "give init_image too, or leave mask_image unset.",
            )
        if strength is not None:
            fail(
                "strength",
                strength,
                "strength is for image-to-image requests",
                "give init_image too, or leave strength unset.",
            )
        return {}
    if not (caps.image_to_image or caps.instruction_editing):
        fail(
            "init_image",
            input_image.describe(image),
            f"{who} does not take an input image",
            "leave init_image unset (text-to-image), or choose a backend or model whose "
            "capabilities say image_to_image.",
        )
    if mask is not None:
        if not caps.inpainting:
            fail(
                "mask_image",
                input_image.describe(mask),
                f"{who} does not inpaint (takes no mask)",
                "leave mask_image unset, or choose a model whose capabilities say inpainting.",
            )
        if tuple(mask.size) != tuple(image.size):
            fail(
                "mask_image",
                input_image.describe(mask),
                f"the mask is {mask.size[0]}x{mask.size[1]}, the input image "
                f"{image.size[0]}x{image.size[1]}",
                "make the mask exactly the size of the input image.",
            )
    if strength is not None and not caps.image_to_image:
        fail(
            "strength",
            strength,
            f"{who} edits by instruction and takes no strength",
            "leave strength unset.",
        )
    if strength is not None and not 0.0 <= strength <= 1.0:
        fail(
            "strength",
            strength,
            "strength must be from 0 to 1",
            "use a strength from 0 (keep the input) to 1 (remake it all), e.g. 0.75.",
        )
    if strength is None and caps.image_to_image:
        strength = DEFAULT_STRENGTH
    return {"strength": strength}
