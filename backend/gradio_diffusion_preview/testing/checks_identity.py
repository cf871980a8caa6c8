"""The identity check: a backend's id, names, capabilities, availability and models are well
formed and consistent, before the kit runs it at all (the registry, the CLI and the UI read
them)."""

from __future__ import annotations

import json
import re
import time
from typing import NoReturn

from ..backend import Availability, Backend, Capabilities, ModelDefaults, ModelInfo
from .network_calls import watch_network
from .report import ConformanceError, backend_name, validation_message

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""What a backend id may look like: users type it."""
AVAILABILITY_SECONDS = 1.0
"""The most one ``availability()`` call may take: it is asked before every run."""


def check_identity(backend: Backend) -> None:
    """The backend's identity, capabilities and models are well formed and consistent;
    ``availability()`` answers an ``Availability`` quickly, without raising or using the
    network; each model's own defaults fit the backend's capabilities."""
    bid = backend_name(backend)

    def fail(expected: str, seen: str, *, fix: str) -> NoReturn:
        raise ConformanceError(bid, "identity", expected, seen, fix=fix)

    if not isinstance(backend, Backend):
        fail(
            "an instance of gradio_diffusion_preview.Backend",
            type(backend).__name__,
            fix="subclass gradio_diffusion_preview.Backend and pass the kit an instance of it",
        )
    for name in ("id", "display_name", "location"):
        if not hasattr(backend, name):
            fail(
                f"the class attribute `{name}`",
                "it is missing",
                fix=f'set `{name}` on the backend class (id = "my-service", display_name = '
                '"My service", location = "remote" or "local")',
            )
    if not isinstance(backend.id, str) or not ID_PATTERN.match(backend.id):
        fail(
            "`id` to be a non-empty name of letters, digits, '.', '_' and '-' "
            "(it is what users type)",
            repr(backend.id),
            fix='give the class a short id such as "my-service" (no spaces or slashes)',
        )
    if not isinstance(backend.display_name, str) or not backend.display_name.strip():
        fail(
            "`display_name` to be a non-empty string",
            repr(backend.display_name),
            fix='set display_name to the name users read in the UI, e.g. "My service"',
        )
    if backend.location not in ("local", "remote"):
        fail(
            "`location` to be 'local' or 'remote'",
            repr(backend.location),
            fix='set location = "local" for a backend that computes in this process, '
            '"remote" for one that calls a service',
        )
    caps = backend.capabilities
    if not isinstance(caps, Capabilities):
        fail(
            "`capabilities` to be a gradio_diffusion_preview.Capabilities",
            type(caps).__name__,
            fix="set capabilities = Capabilities(...) on the class (or return one from a "
            "capabilities property)",
        )
    problems = capability_problems(caps)
    if problems:
        fail(
            "capabilities whose defaults satisfy their own limits",
            "; ".join(problems),
            fix=LIMITS_FIX,
        )
    check_availability(backend, fail)
    try:
        models = list(backend.models())
        default = backend.default_model()
    except Exception as error:
        fail(
            "models() to list the models (the kit needs the listing to work)",
            f"{type(error).__name__}: {error}",
            fix="make models() and default_model() work in the test: start the service in a "
            "fixture or configure the backend so it can list its models; raise "
            "ModelListingError with a fix for a service that is down",
        )
    wrong = [m for m in models if not isinstance(m, ModelInfo)]
    if wrong:
        fail(
            "models() to return ModelInfo objects",
            repr(wrong[0]),
            fix='return ModelInfo(id, name) for each model, e.g. ModelInfo("sd15", '
            '"Stable Diffusion 1.5")',
        )
    ids = [m.id for m in models]
    if any(not isinstance(i, str) or not i.strip() for i in ids):
        fail(
            "every model id to be a non-empty string",
            repr(ids),
            fix="give every ModelInfo the id users pass as model=..., e.g. the service's "
            "model name",
        )
    if len(set(ids)) != len(ids):
        fail(
            "models() to list each model id once",
            ", ".join(ids),
            fix="drop the duplicates (a service listing a model twice, under aliases, keeps "
            "one id per model)",
        )
    if not models and not caps.any_model:
        fail(
            "at least one model (or capabilities.any_model=True): otherwise every request "
            "fails validation",
            "models() returned nothing",
            fix="list at least one ModelInfo, or declare Capabilities(any_model=True) for a "
            "service that takes any model name",
        )
    if default is not None and not caps.any_model and default not in ids:
        fail(
            f"default_model() to be one of the listed models ({', '.join(ids)})",
            repr(default),
            fix="return one of the ids models() lists from default_model(), or None",
        )
    for model in models:
        check_model_defaults(backend, model, fail)
    try:
        json.dumps(backend.describe())
    except (TypeError, ValueError) as error:
        fail(
            "describe() to be JSON-serialisable (the CLI prints it)",
            str(error),
            fix="return only str, int, float, bool, None, lists and dicts from describe() "
            "(a URL as a str, a path as str(path))",
        )


def check_availability(backend: Backend, fail) -> None:
    """``availability()`` returns an ``Availability`` within a second, raises nothing, makes
    no network call, and says why (and how to fix it) when the backend is not usable."""
    calls: list[str] = []
    started = time.monotonic()
    try:
        with watch_network(calls):
            availability = backend.availability()
    except Exception as error:
        fail(
            "availability() to answer without raising (it is asked before every run)",
            f"{type(error).__name__}: {error}",
            fix="return Availability(state, message) for every case you can detect cheaply",
        )
    took = time.monotonic() - started
    if not isinstance(availability, Availability):
        fail(
            "availability() to return a gradio_diffusion_preview.Availability",
            f"a {type(availability).__name__}: {availability!r}",
            fix='return Availability("usable") or Availability(state, message), e.g. '
            'Availability("not_configured", "Set MY_SERVICE_URL.")',
        )
    if calls:
        fail(
            "availability() to make no network calls (it is asked before every run)",
            ", ".join(calls[:3]),
            fix="decide from configuration alone (a URL set, a token present); report a "
            "service that cannot be reached as Failed(reason='unavailable') in generate, or "
            "as an error from models()",
        )
    if took > AVAILABILITY_SECONDS:
        fail(
            f"availability() to answer within {AVAILABILITY_SECONDS:g}s (it is asked before "
            "every run)",
            f"it took {took:.1f}s",
            fix="decide from configuration alone (a URL set, a token present) and cache "
            "anything slower; never wait on a service here",
        )
    if not availability.usable and not availability.message.strip():
        fail(
            "an Availability that is not usable to say why and how to fix it in its message",
            f"state={availability.state!r}, message=''",
            fix="pass a message that says what is missing and how to set it, e.g. "
            'Availability("not_configured", "Set MY_SERVICE_URL to the service\'s address.")',
        )


def check_model_defaults(backend: Backend, model: ModelInfo, fail) -> None:
    """A model's own defaults are a ``ModelDefaults`` that fits the backend's capabilities
    (validation applies them to every request for that model)."""
    defaults = model.defaults
    if defaults is None:
        return
    if not isinstance(defaults, ModelDefaults):
        fail(
            f"model '{model.id}''s defaults to be a ModelDefaults or None",
            f"a {type(defaults).__name__}",
            fix="pass ModelInfo(id, name, defaults=ModelDefaults(...)), or leave defaults out",
        )
    try:
        caps = backend.capabilities_for(model.id)
    except ValueError as error:
        fail(
            f"model '{model.id}''s defaults to fit the backend's capabilities",
            validation_message(error),
            fix="give the model a complete set of its own limits: a steps_range with a "
            "default_steps inside it, a default_size within min_size..max_size, and so on",
        )
    problems = capability_problems(caps)
    if problems:
        fail(
            f"model '{model.id}''s defaults to satisfy their own limits",
            "; ".join(problems),
            fix=LIMITS_FIX,
        )


LIMITS_FIX = (
    "make each default fit its own limit: default_steps inside steps_range, default_size "
    "within min_size..max_size and a multiple of size_multiple, default_guidance inside "
    "guidance_range, min_size <= max_size"
)


def capability_problems(caps: Capabilities) -> list[str]:
    """Where the capabilities' defaults break their own limits, one phrase each."""
    problems = []
    if caps.min_size > caps.max_size:
        problems.append(f"min_size {caps.min_size} > max_size {caps.max_size}")
    for side in caps.default_size:
        if not caps.min_size <= side <= caps.max_size or side % caps.size_multiple:
            problems.append(
                f"default_size {caps.default_size} is outside {caps.min_size}.."
                f"{caps.max_size} or not a multiple of {caps.size_multiple}"
            )
            break
    low, high = caps.steps_range
    if not 1 <= low <= high:
        problems.append(f"steps_range {caps.steps_range} is not 1 <= low <= high")
    elif not low <= caps.default_steps <= high:
        problems.append(
            f"default_steps {caps.default_steps} is outside steps_range {caps.steps_range}"
        )
    g_low, g_high = caps.guidance_range
    if caps.guidance and not g_low <= caps.default_guidance <= g_high:
        problems.append(
            f"default_guidance {caps.default_guidance} is outside guidance_range "
            f"{caps.guidance_range}"
        )
    return problems
