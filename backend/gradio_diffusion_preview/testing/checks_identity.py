"""The identity check: a backend's id, names, capabilities and models are well formed and
consistent, before the kit runs it at all (the registry, the CLI and the UI read them)."""

from __future__ import annotations

import json
import re
from typing import NoReturn

from ..backend import Backend, Capabilities, ModelInfo
from .report import ConformanceError, backend_name

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""What a backend id may look like: users type it."""


def check_identity(backend: Backend) -> None:
    """The backend's identity, capabilities and models are well formed and consistent."""
    bid = backend_name(backend)

    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(bid, "identity", expected, seen)

    if not isinstance(backend, Backend):
        fail("an instance of gradio_diffusion_preview.Backend", type(backend).__name__)
    for name in ("id", "display_name", "location"):
        if not hasattr(backend, name):
            fail(f"the class attribute `{name}`", "it is missing")
    if not isinstance(backend.id, str) or not ID_PATTERN.match(backend.id):
        fail(
            "`id` to be a non-empty name of letters, digits, '.', '_' and '-' "
            "(it is what users type)",
            repr(backend.id),
        )
    if not isinstance(backend.display_name, str) or not backend.display_name.strip():
        fail("`display_name` to be a non-empty string", repr(backend.display_name))
    if backend.location not in ("local", "remote"):
        fail("`location` to be 'local' or 'remote'", repr(backend.location))
    caps = backend.capabilities
    if not isinstance(caps, Capabilities):
        fail("`capabilities` to be a gradio_diffusion_preview.Capabilities", type(caps).__name__)
    problems = capability_problems(caps)
    if problems:
        fail("capabilities whose defaults satisfy their own limits", "; ".join(problems))
    try:
        models = list(backend.models())
        default = backend.default_model()
    except Exception as error:
        fail(
            "models() to list the models (the kit needs the listing to work)",
            f"{type(error).__name__}: {error}",
        )
    wrong = [m for m in models if not isinstance(m, ModelInfo)]
    if wrong:
        fail("models() to return ModelInfo objects", repr(wrong[0]))
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        fail("models() to list each model id once", ", ".join(ids))
    if not models and not caps.any_model:
        fail(
            "at least one model (or capabilities.any_model=True): otherwise every request "
            "fails validation",
            "models() returned nothing",
        )
    if default is not None and not caps.any_model and default not in ids:
        fail(f"default_model() to be one of the listed models ({', '.join(ids)})", repr(default))
    try:
        json.dumps(backend.describe())
    except (TypeError, ValueError) as error:
        fail("describe() to be JSON-serialisable (the CLI prints it)", str(error))


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
