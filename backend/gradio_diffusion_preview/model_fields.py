"""The request a backend *and its model* accept, from the fields a form or app sends.

A UI sends every control's value, the hidden ones too: a guidance slider hidden for FLUX.1
[schnell] still sends 3.5, and the model refuses any guidance. ``accepted_fields`` drops what the
chosen model does not take, judged by the model's own capabilities
(``backend.capabilities_for(model)``), not the backend's, so a form never trips over a control it
does not show. Everything else is left to the request's validation, which refuses a value out of
range naming the field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .plugins import UnknownBackendError, get_registry

if TYPE_CHECKING:
    from .backend import Backend, Capabilities
    from .plugins import Registry
    from .policy import Policy

_TAKES = {
    "negative_prompt": "negative_prompt",
    "guidance": "guidance",
    "seed": "seed",
    "steps": "steps",
    "strength": "image_to_image",  # an instruction-editing model takes the image, no strength
}
"""Each optional request field and the capability that says whether a model takes it."""


def accepted_fields(
    backend: str,
    fields: Mapping[str, Any],
    *,
    policy: Policy | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """``fields`` without what the chosen model of ``backend`` does not take.

    ``fields["model"]`` names the model: with a ``policy`` (a public app's catalogue) it is an
    entry's id or label and the entry's model is judged; without one it is the model itself
    (``None``: the backend's default). An empty negative prompt is dropped too (it asks for
    nothing). When the backend or model is unknown, or its capabilities cannot be read now (a
    failed listing), the fields go as sent: the run itself then refuses them, saying why.
    """
    sent = dict(fields)
    if not sent.get("negative_prompt"):
        sent.pop("negative_prompt", None)
    caps = _model_capabilities(backend, sent.get("model"), policy, registry)
    if caps is None:
        return sent
    for field, capability in _TAKES.items():
        if not getattr(caps, capability):
            sent.pop(field, None)
    return sent


def _model_capabilities(
    backend_id: str, choice: Any, policy: Policy | None, registry: Registry | None
) -> Capabilities | None:
    """The capabilities of the model ``choice`` names, or None when they cannot be known."""
    from .request import InvalidRequest

    try:
        backend: Backend = (registry or get_registry()).get(backend_id)
    except (UnknownBackendError, TypeError):
        return None
    try:
        if policy is not None:
            model = policy.entry(backend_id, choice).model
        else:
            model = choice or backend.default_model()
        return backend.capabilities_for(model)
    except InvalidRequest:
        return None  # not this app's model: the run refuses it, naming the choices
    except Exception:  # a listing that failed (offline): the run reports it as such
        return None
