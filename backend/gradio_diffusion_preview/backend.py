"""The backend contract: what every image-generation backend declares and implements.

A backend is an object with an identity (``id``, ``display_name``, ``location``), a
``Capabilities`` record that the central request validation reads, a list of models (each of
which may carry its own defaults and limits, ``ModelDefaults``), and a
``generate(request, control)`` generator of events (see ``events``). Subclass ``Backend`` and
register an instance from a plugin's ``register_backends`` hook.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .typed_options import Options

if TYPE_CHECKING:
    from .control import RunControl
    from .events import FailureReason, GenerationEvent
    from .request import GenerationRequest

MODEL_LIST_SECONDS = 60.0
"""How long a backend's model listing is reused before ``models()`` is called again."""
FAILED_LIST_SECONDS = 10.0
"""How long a failed listing is remembered, so a dead service is not asked on every request."""
SEED_RANGE = (0, 2**32 - 1)
"""The seeds a backend accepts unless it declares fewer (``Capabilities.seed_range``)."""


class ModelDefaults(BaseModel):
    """A model's own defaults and limits, over its backend's ``Capabilities``.

    Each field left ``None`` inherits the backend's value. Turbo and schnell models, for
    example, want 1 to 4 steps and no guidance: ``ModelDefaults(default_steps=1,
    steps_range=(1, 4), default_guidance=0.0)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_steps: int | None = None
    steps_range: tuple[int, int] | None = None
    guidance: bool | None = None
    default_guidance: float | None = None
    guidance_range: tuple[float, float] | None = None
    negative_prompt: bool | None = None
    default_size: tuple[int, int] | None = None
    sizes: tuple[tuple[int, int], ...] | None = None
    min_size: int | None = None
    max_size: int | None = None
    size_multiple: int | None = None
    max_batch: int | None = None
    image_to_image: bool | None = None
    inpainting: bool | None = None
    instruction_editing: bool | None = None
    text_to_image: bool | None = None

    def overrides(self) -> dict[str, Any]:
        """The fields this model sets, by name."""
        return self.model_dump(exclude_none=True)


def _positional(cls: type[BaseModel], args: tuple[Any, ...], fields: dict[str, Any]) -> dict:
    """``fields`` with ``args`` given to ``cls``'s fields in their declared order, so
    ``ModelInfo("sd15")`` and ``Availability("not_configured", "Set X.")`` read like the events;
    too many arguments, or one given twice, is a ``TypeError`` naming the class and the fields."""
    names = list(cls.model_fields)
    if len(args) > len(names):
        raise TypeError(
            f"{cls.__name__}() takes at most {len(names)} positional arguments "
            f"({', '.join(names)}) but {len(args)} were given"
        )
    twice = [name for name in names[: len(args)] if name in fields]
    if twice:
        raise TypeError(f"{cls.__name__}() got {twice[0]!r} both by position and by name")
    return {**dict(zip(names, args, strict=False)), **fields}


class ModelInfo(BaseModel):
    """One model a backend offers: ``ModelInfo("sd15")``, ``ModelInfo("sd15", "Stable
    Diffusion 1.5")`` or by keyword, as you like."""

    model_config = ConfigDict(frozen=True)

    def __init__(self, *args: Any, **fields: Any) -> None:
        super().__init__(**_positional(type(self), args, fields))

    id: str
    name: str | None = None
    description: str = ""
    defaults: ModelDefaults | None = None
    """The model's own defaults and limits (steps, guidance, size), when they differ from the
    backend's."""


class Capabilities(BaseModel):
    """What a backend can do; requests are validated against this before any work starts."""

    model_config = ConfigDict(frozen=True)

    step_events: bool = True
    """True when ``generate`` yields a ``Step`` per denoising step. A backend that waits on a
    service reporting no steps sets False and yields ``Status`` events instead."""
    step_previews: bool = True
    exact_steps: bool = True
    """True when each ``Step`` counts the request's steps (a model loop run here: the last
    Step is the total). False when progress is a service's own count, read by polling (tqdm
    lines in its logs): each Step's ``total_steps`` is then the service's, and the last step
    may be missed."""
    negative_prompt: bool = True
    seed: bool = True
    """False for a service that cannot be seeded: requests give no seed, and ``Started`` and
    ``Finished`` carry ``seeds=None``, so no image claims a seed it was not made with."""
    seed_range: tuple[int, int] = SEED_RANGE
    """The seeds accepted, when ``seed``: a remote app's seed slider or number box declares its
    own (most FLUX and SD Spaces stop at 2**31 - 1). An explicit seed outside is refused before
    the run; random seeds are drawn within it, and at most 2**31 - 1 (``request.random_seed``)."""
    seed_per_image: bool = True
    """False for a service that takes one seed for a whole batch: every image of a batch then
    carries that one seed (``seeds=[seed] * num_images``)."""
    steps: bool = True
    """False for a service that takes no number of steps: requests give none, the request
    arrives with ``steps=None``, and no image claims a number of steps."""
    guidance: bool = True
    guidance_range: tuple[float, float] = (0.0, 30.0)
    default_guidance: float = 7.5
    size_multiple: int = Field(8, ge=1)
    min_size: int = Field(64, ge=1)
    max_size: int = Field(2048, ge=1)
    default_size: tuple[int, int] = (512, 512)
    sizes: tuple[tuple[int, int], ...] = ()
    """The only (width, height) pairs the service makes, for one with a fixed list (256x256,
    1024x1024, 1792x1024...); empty for any size within the limits above. Validation refuses
    any other size before the run, naming the list."""
    steps_range: tuple[int, int] = (1, 150)
    default_steps: int = 20
    max_batch: int = Field(4, ge=1)
    cancel: bool = True
    cancel_confirms: bool = False
    """True when ``generate`` passes a cancel on to a service and ends the cancelled run with
    ``Cancelled(acknowledged, detail)``, the service's answer: the widget then says
    "Stopping…" until it comes, and says so when the service refused (the job may still run)."""
    finish_early: bool = False
    any_model: bool = False
    """True when the backend accepts models beyond those it lists (paths, hub repo ids)."""
    image_to_image: bool = False
    """True when the backend (or the model, through ``ModelDefaults``) takes an input image
    (``init_image``) and a ``strength``: image-to-image. Backends that declare nothing take
    none, and a request with an input image is refused before the run."""
    inpainting: bool = False
    """True when it also takes a ``mask_image`` (white where the input is to be remade)."""
    instruction_editing: bool = False
    """True when it edits an input image by the prompt's instruction (FLUX.1 Kontext,
    Qwen-Image-Edit): an ``init_image`` and no ``strength``."""
    text_to_image: bool = True
    """False for a model that only edits: it needs an ``init_image`` (a service that serves
    it for image-to-image only). A request without one is refused before the run, and the
    Generate and Compare tabs do not offer it (the Edit tabs do)."""
    options: dict[str, str] = Field(default_factory=dict)
    """Backend-specific request options this backend understands: name -> description.
    Declare them as a typed ``Options`` class (``Capabilities(options=MyOptions)``): this
    field, ``option_choices``, ``option_labels`` and ``options_model`` are then derived from it,
    and requests' options are checked through it before the run. A plain dict of names is the
    old, deprecated way: only the names are checked, and ``generate`` checks the values."""
    option_choices: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """For options that take one of a fixed set of values (a sampler, a previewer): name ->
    the values, in the order a UI offers them (it preselects the first). Apps show these as
    dropdowns instead of free text, and a policy holds visitors to them. Derived from the
    ``Literal`` fields of a typed ``Options`` class."""
    option_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Labels for people of some options' choices (``latent_rgb`` -> "Latent RGB"): name ->
    value -> label. Derived from a typed ``Options`` class's ``Field(json_schema_extra=
    {"labels": ...})``; a choice without a label is shown as it is."""
    options_model: type[Options] | None = Field(None, exclude=True)
    """The typed ``Options`` class the options come from; ``None`` for the old dict of names."""

    @model_validator(mode="before")
    @classmethod
    def _typed_options(cls, data: Any) -> Any:
        """``options=SomeOptions`` (a class): the derived fields filled from it."""
        if not isinstance(data, dict):
            return data
        given = data.get("options")
        if isinstance(given, type) and issubclass(given, Options):
            data = {**data, "options_model": given}
        model = data.get("options_model")
        if model is None:
            return data
        return {
            **data,
            "options": model.descriptions(),
            "option_choices": model.choices(),
            "option_labels": model.labels(),
        }

    def with_options(self, model: type[Options]) -> Capabilities:
        """These capabilities with a (narrowed) ``Options`` class and what derives from it."""
        return self.model_copy(
            update={
                "options_model": model,
                "options": model.descriptions(),
                "option_choices": model.choices(),
                "option_labels": model.labels(),
            }
        )

    def options_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the typed options (for an API page), or ``None`` without one."""
        return None if self.options_model is None else self.options_model.model_json_schema()

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> Capabilities:
        low, high = self.steps_range
        problems = []
        if not 1 <= low <= high:
            problems.append(f"steps_range {self.steps_range} must be 1 <= low <= high")
        elif not low <= self.default_steps <= high:
            problems.append(f"default_steps {self.default_steps} is outside {self.steps_range}")
        g_low, g_high = self.guidance_range
        if not 0 <= self.seed_range[0] <= self.seed_range[1]:
            problems.append(f"seed_range {self.seed_range} must be 0 <= low <= high")
        if g_low > g_high:
            problems.append(f"guidance_range {self.guidance_range} must be low <= high")
        elif self.guidance and not g_low <= self.default_guidance <= g_high:
            problems.append(
                f"default_guidance {self.default_guidance} is outside {self.guidance_range}"
            )
        if self.min_size > self.max_size:
            problems.append(f"min_size {self.min_size} is above max_size {self.max_size}")
        elif not all(self.min_size <= side <= self.max_size for side in self.default_size):
            problems.append(
                f"default_size {self.default_size} is outside {self.min_size}..{self.max_size}"
            )
        if self.sizes and tuple(self.default_size) not in self.sizes:
            problems.append(f"default_size {self.default_size} is not one of sizes")
        unknown = sorted(set(self.option_choices) - set(self.options))
        if unknown:
            problems.append(f"option_choices names options not in options: {unknown}")
        if any(not values for values in self.option_choices.values()):
            problems.append("option_choices lists an option with no values")
        if self.step_previews and not self.step_events:
            problems.append("step_previews=True needs step_events=True (previews ride on Steps)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def for_model(self, defaults: ModelDefaults | None) -> Capabilities:
        """These capabilities with a model's own defaults and limits applied."""
        if defaults is None or not defaults.overrides():
            return self
        return Capabilities.model_validate(
            {**self.model_dump(), "options_model": self.options_model, **defaults.overrides()}
        )


DEFAULT_CAPABILITIES = Capabilities()
"""The capabilities of a backend that declares none."""

AvailabilityState = Literal["usable", "needs_token", "offline", "not_configured", "unavailable"]


class Availability(BaseModel):
    """Whether a backend can run now, and if not, why: for people (``message``, naming the
    fix) and for code (``state``). Checked before a run starts and shown by the CLI.
    ``Availability("not_configured", "Set X.")`` or by keyword, as you like."""

    model_config = ConfigDict(frozen=True)

    def __init__(self, *args: Any, **fields: Any) -> None:
        super().__init__(**_positional(type(self), args, fields))

    state: AvailabilityState = "usable"
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.state == "usable"

    @property
    def reason(self) -> FailureReason:
        """The failure reason a run refused for this availability gets (``Failed.reason``):
        ``unauthorized`` for a missing token, else ``unavailable``. A backend that checks its
        availability again inside ``generate`` fails with this, as validation does."""
        return "unauthorized" if self.state == "needs_token" else "unavailable"


USABLE = Availability()


class ModelListingError(RuntimeError):
    """A backend could not list its models (a service down, no token, no cache); ``str()``
    names the backend and the cause (and the cause's own fix, when it names one). ``reason``
    is the failure reason a run refused for it gets: the cause's own ``reason`` attribute when
    it has one (a refused login is ``unauthorized``), else ``unavailable``. ``refusal()`` is the
    whole message for a refused run: the cause, then exactly one "Fix:" (the cause's own, else
    one general fix).

    A backend's ``models()`` may raise it with the fix apart (``fix=``): ``list_models`` then
    names the backend once and keeps that fix as the one fix."""

    reason: str = "unavailable"

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        cause, own_fix = split_fix(message)
        self.cause = cause
        self.fix = _bare(fix) if fix else own_fix
        super().__init__(join_fix(cause, self.fix) if self.fix else cause)

    def refusal(self) -> str:
        """This error as one message with exactly one "Fix:" and one closing full stop."""
        return join_fix(self.cause, self.fix or GENERAL_LISTING_FIX)


GENERAL_LISTING_FIX = (
    "check the backend's setup or connection (`python -m gradio_diffusion_preview plugins` "
    "shows what it lists), then try again"
)
"""The fix of a listing failure whose cause names none."""


def _bare(text: str) -> str:
    """``text`` without surrounding blanks and closing full stops."""
    return text.strip().rstrip(".").rstrip()


def split_fix(text: str) -> tuple[str, str | None]:
    """A message for people as (cause, fix): the fix is what follows its first "Fix:"
    (None when it names none); neither part keeps its closing full stop."""
    cause, marker, fix = text.partition("Fix:")
    return _bare(cause), (_bare(fix) or None) if marker else None


def join_fix(cause: str, fix: str) -> str:
    """One message: the cause, one "Fix:", one closing full stop."""
    return f"{_bare(cause)}. Fix: {_bare(fix)}."


def _listing_failure(backend_id: str, error: BaseException) -> ModelListingError:
    """The ``ModelListingError`` for a failed ``models()``: the backend named once, the cause
    as it was written for people, its own fix kept apart (see ``_cause_text``)."""
    from .events import FAILURE_REASONS

    if isinstance(error, ModelListingError):
        cause, fix = error.cause, error.fix
    else:
        cause, fix = split_fix(_cause_text(error))
        own = getattr(error, "fix", None)  # a cause that keeps its fix apart (RayUnreachable)
        if isinstance(own, str) and own and fix is None:
            cause, fix = _bare(getattr(error, "cause", cause)), own
    result = ModelListingError(
        f"Backend '{backend_id}' could not list its models: {cause}", fix=fix
    )
    reason = getattr(error, "reason", None)
    if reason in FAILURE_REASONS:  # not any .reason (urllib's is a message)
        result.reason = reason
    return result


def _cause_text(error: BaseException) -> str:
    """What a failed ``models()`` says, for people. A message composed for people (one of
    this project's ``RemoteFailure``s or ``ModelListingError``s: it carries a failure reason,
    or names its own fix) is given as it is; anything else (``ConnectionError: no network``)
    with its type, which is then the only clue."""
    from .events import FAILURE_REASONS

    text = str(error).strip()
    composed = (
        isinstance(error, ModelListingError)
        or getattr(error, "reason", None) in FAILURE_REASONS
        or "Fix:" in text
        or isinstance(getattr(error, "fix", None), str)
    )
    return text if composed and text else f"{type(error).__name__}: {text}"


class Backend(ABC):
    """Base class for image-generation backends. Subclasses set the class attributes and
    implement ``generate``; ``models`` may be overridden to list models lazily."""

    id: ClassVar[str]
    display_name: ClassVar[str]
    location: ClassVar[Literal["local", "remote"]]

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do. One way to declare it, two cases: fixed capabilities are a
        class attribute (``capabilities = Capabilities(...)``); capabilities that the backend's
        settings or its service decide are a property computed from the instance's state
        (never I/O: it is read before every run)."""
        return DEFAULT_CAPABILITIES

    def models(self) -> Sequence[ModelInfo]:
        """The models this backend offers; may do I/O. Callers use ``list_models``, which
        reuses a listing for a short while, so this is not called on every request."""
        return []

    def list_models(self, max_age: float = MODEL_LIST_SECONDS) -> list[ModelInfo]:
        """``models()``, reused for up to ``max_age`` seconds; raises ``ModelListingError``
        (remembered for a few seconds) when the listing fails."""
        with _listing_lock:
            cached = self.__dict__.get("_gdp_listing")
        now = time.monotonic()
        if cached is not None:
            taken, result = cached
            fresh = max_age if isinstance(result, list) else min(max_age, FAILED_LIST_SECONDS)
            if now - taken < fresh:
                if isinstance(result, ModelListingError):
                    raise result
                return list(result)
        try:
            result: list[ModelInfo] | ModelListingError = list(self.models())
        except Exception as error:
            result = _listing_failure(self.id, error)
        with _listing_lock:
            self.__dict__["_gdp_listing"] = (now, result)
        if isinstance(result, ModelListingError):
            raise result
        return list(result)

    def forget_models(self) -> None:
        """Drop the reused listing, so the next ``list_models`` asks ``models()`` again."""
        with _listing_lock:
            self.__dict__.pop("_gdp_listing", None)

    def availability(self) -> Availability:
        """Whether this backend can run now (a token set, online, configured). It must be
        cheap and make no network calls: it is asked before every run and by the demo."""
        return USABLE

    def default_model(self) -> str | None:
        """The model used when a request names none: the first listed, by default."""
        listed = self.list_models()
        return listed[0].id if listed else None

    def model_info(self, model: str) -> ModelInfo | None:
        """The listed model with this id, or ``None``. Backends that accept models they do
        not list (``any_model``) may override this to describe them (e.g. from their name)."""
        try:
            listed = self.list_models()
        except ModelListingError:
            return None
        return next((info for info in listed if info.id == model), None)

    def capabilities_for(self, model: str | None) -> Capabilities:
        """The capabilities that hold for ``model``: the backend's, with the model's own
        defaults and limits applied."""
        info = self.model_info(model) if model else None
        return self.capabilities.for_model(info.defaults if info else None)

    @abstractmethod
    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        """Yield ``Started``, then ``Step`` (and/or ``Status``) events, then ``Finished`` or
        one ``Failed``.

        ``request`` has already been validated against ``capabilities_for(model)`` and has its
        model, size, steps and seed filled in. Check ``control.cancelled`` at least once per
        step, and wait with ``control.wait_cancelled(seconds)`` instead of sleeping, so a
        cancel returns promptly. Report failures as a ``Failed`` event, not an exception.
        """

    def describe(self) -> dict:
        """A JSON-ready description of this backend (used by the CLI and ``list_plugins``)."""
        return {
            "id": self.id,
            "display_name": self.display_name,
            "location": self.location,
            "availability": self.availability().model_dump(mode="json"),
            "capabilities": self.capabilities.model_dump(mode="json"),
            "options_schema": self.capabilities.options_schema(),
        }


_listing_lock = threading.Lock()
