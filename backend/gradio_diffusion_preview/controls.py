"""What a UI offers for a catalogue model, in one place for the Generate and Compare tabs.

Per-model control settings (ranges and defaults held to the policy's limits, the negative
prompt only where the model takes one, the sampler and previewer choices), whether a backend
can run here (a one-line reason for visitors; the owner's fix goes to the log), the seed rule
(``-1`` or an empty box: a random seed), the backend options typed as JSON, and the short,
plain sentences a visitor reads when a run fails. ``generate_tab`` and ``compare_tab`` both
use it, so any app built on them gets the same first minute.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from .plugins import get_registry
from .request import InvalidRequest

if TYPE_CHECKING:
    from .policy import CatalogueEntry, Policy
    from .run_state import RunState

log = logging.getLogger(__name__)

RANDOM_SEED = -1
"""The seed box's value for "a random seed" (an empty box means the same)."""

CONTROLS = (
    "steps",
    "guidance",
    "width",
    "height",
    "num_images",
    "negative",
    "sampler",
    "previewer",
)
"""The controls ``control_settings`` sets, in the order a tab's outputs list them."""

_SHORT_REASONS = {
    "needs_token": "it needs an access token this server does not have",
    "offline": "this server is offline",
    "not_configured": "it is not set up on this server",
    "unavailable": "it cannot be reached from this server now",
}


def find_entry(policy: Policy, backend_id: Any, model_id: Any) -> CatalogueEntry | None:
    """The catalogue entry chosen, or None when there is no such entry."""
    if not isinstance(backend_id, str):
        return None
    try:
        return policy.entry(backend_id, model_id)
    except InvalidRequest:
        return None


def entry_by_id(policy: Policy, model_id: Any) -> CatalogueEntry | None:
    """The catalogue entry whose id (or label) is ``model_id``, whatever its backend."""
    return next((e for e in policy.catalogue if model_id in (e.id, e.label)), None)


def control_settings(policy: Policy, backend_id: str, model_id: str | None) -> dict | None:
    """The settings of each control for the chosen model: the ranges and defaults of its
    steps, guidance, size and batch held to the policy's limits (so no setting on offer is
    refused), the negative prompt only where it is used, and the sampler and previewer as
    dropdowns where this model offers a choice. None for a model not in the catalogue."""
    registry = get_registry()
    entry = find_entry(policy, backend_id, model_id)
    if entry is None or entry.backend not in registry.backends():
        return None
    backend = registry.get(entry.backend)
    caps = policy.controls(entry, backend)
    choices = policy.option_choices(entry, backend)
    low, high = caps.steps_range
    g_low, g_high = caps.guidance_range

    def size(side: int) -> dict:
        return {**slider_range(caps.min_size, caps.max_size, caps.size_multiple), "value": side}

    return {
        "steps": {**slider_range(low, high, 1), "value": caps.default_steps},
        "guidance": {
            **slider_range(g_low, g_high, 0.5),
            "value": caps.default_guidance,
            "visible": caps.guidance,
        },
        "width": size(caps.default_size[0]),
        "height": size(caps.default_size[1]),
        "num_images": {
            **slider_range(1, caps.max_batch, 1),
            "value": 1,
            "info": f"Up to {caps.max_batch} with this model.",
        },
        "negative": {"visible": caps.negative_prompt},
        "sampler": dropdown_choice(choices.get("scheduler")),
        "previewer": dropdown_choice(choices.get("previewer"), caps.option_labels.get("previewer")),
    }


def slider_range(low: float, high: float, step: float) -> dict:
    """A slider's range; a model that allows one value only gets a fixed slider (Gradio's
    sliders need a minimum below the maximum)."""
    if low < high:
        return {"minimum": low, "maximum": high, "step": step, "interactive": True}
    return {"minimum": high - step, "maximum": high, "step": step, "interactive": False}


def dropdown_choice(values: tuple[str, ...] | None, labels: dict[str, str] | None = None) -> dict:
    """A dropdown offering ``values`` (the first preselected), each shown by its label where
    the backend's options give one (``Capabilities.option_labels``); hidden when there is
    none."""
    if not values:
        return {"choices": [], "value": None, "visible": False}
    shown = [(labels.get(value, value), value) for value in values] if labels else list(values)
    return {"choices": shown, "value": values[0], "visible": True}


def options_json(sampler: str | None, previewer: str | None) -> str:
    """The request's backend options from the dropdowns (only those shown and set)."""
    chosen = {"scheduler": sampler, "previewer": previewer}
    return json.dumps({name: value for name, value in chosen.items() if value})


def parse_options(text: Any) -> dict:
    """The backend options typed as JSON text (empty: none); a ValueError names the problem
    and the fix. The one place a tab reads options, so a stricter parser changes one
    function."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if not isinstance(text, str):
        raise ValueError(
            f"Backend options must be JSON text, not {type(text).__name__}. "
            'Fix: send a JSON object as text, e.g. "{}".'
        )
    example = 'e.g. {"scheduler": "euler_a"}'
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Backend options are not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno}). Fix: write a JSON object, {example}."
        ) from None
    except RecursionError:
        raise ValueError(
            f"Backend options are nested too deeply. Fix: write a flat JSON object, {example}."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"Backend options must be a JSON object, not {type(value).__name__}. "
            f"Fix: write name-value pairs in braces, {example}."
        )
    return value


def request_seed(seed: Any) -> Any:
    """The seed field of a request for the seed box's value: None (a random seed) for -1 or
    an empty box, else the value as sent (the request validation refuses a bad one)."""
    return None if seed is None or seed == RANDOM_SEED else seed


def unavailable_reason(backend_id: str) -> str | None:
    """Why ``backend_id`` cannot run here, in a few plain words for a visitor, or None when it
    can. The backend's own message (what the server's owner can do) goes to the log."""
    registry = get_registry()
    if backend_id not in registry.backends():
        log.warning("Backend %r is in the catalogue but not installed.", backend_id)
        return "it is not installed on this server"
    availability = registry.get(backend_id).availability()
    if availability.usable:
        return None
    log.info("Backend %r is %s: %s", backend_id, availability.state, availability.message)
    return _SHORT_REASONS.get(availability.state, _SHORT_REASONS["unavailable"])


def entry_note(entry: CatalogueEntry | None) -> str:
    """What the chosen model is (its catalogue description) and, when it cannot run here, one
    line saying so."""
    if entry is None:
        return ""
    parts = [entry.description] if entry.description else []
    reason = unavailable_reason(entry.backend)
    if reason:
        parts.append(f"**Not available here:** {reason}.")
    return "\n\n".join(parts)


def entry_title(entry: CatalogueEntry) -> str:
    """An entry's name in a list, marked when it cannot run here."""
    return entry.title if unavailable_reason(entry.backend) is None else f"{entry.title} (off)"


_PLAIN_REASONS = {
    "model_not_found": "That model is not available on this server.",
    "unauthorized": "This model is not available on this server.",
    "unavailable": "This model is not available on this server.",
    "out_of_memory": "The server ran out of memory. Try a smaller size or fewer images.",
    "remote_error": "The service failed to make this picture. Try again.",
    "backend_error": "Something went wrong making this picture. Try again.",
}
"""What a visitor reads for failures whose own message is written for the server's owner (an
environment variable to set, a traceback's last line). The others (busy, rate limited, timed
out, filtered) already speak to the visitor and are kept."""

_REFUSAL_PREFIX = re.compile(r"^Invalid request for backend '[^']*': ")
"""The start of a refusal's message, which names the backend: nothing a visitor needs."""

_PLAIN_REFUSALS = {"the prompt is empty": "Type a prompt first."}
"""Refusals a visitor meets by a slip rather than a setting, by the rule the refusal names
(``request.InvalidRequest``): one short sentence instead of the field, its value and the fix."""


def plain_error(state: RunState) -> RunState:
    """``state`` (a failed run) with a short sentence a visitor understands; the full message,
    which may name the owner's fix, goes to the log. A refused setting keeps its field, rule
    and fix ("steps=150 is not allowed (at most 50 steps in this app). Fix: use 50 or
    fewer.") without the backend's name; an empty prompt reads "Type a prompt first.". Any
    other state is returned as it is."""
    if state.status != "error":
        return state
    log.warning("Run failed (%s): %s", state.reason, state.message)
    message = state.message or ""
    slip = next((text for rule, text in _PLAIN_REFUSALS.items() if f"({rule})" in message), None)
    if slip and _REFUSAL_PREFIX.match(message):
        text = slip
    elif _REFUSAL_PREFIX.match(message):
        text = _REFUSAL_PREFIX.sub("", message)
    elif state.reason in _PLAIN_REASONS:
        text = _PLAIN_REASONS[state.reason]
    else:
        return state
    return state.model_copy(update={"message": text})
