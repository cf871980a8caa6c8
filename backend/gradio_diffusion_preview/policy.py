"""Policy: what a visitor of a public app may ask for, and how much of the server one run may use.

An app hands a ``Policy`` to the glue (``stream(..., policy=policy)``). With it, a visitor picks
an entry of the app's **catalogue** (an id and a friendly label standing for a backend, a model and
the options the app fixes, such as a device); model paths, devices and dtypes never come from a
visitor. Requests are held to **limits** (prompt and negative prompt length, steps, size, batch, a
time limit per run); runs wait their turn in a first-come-first-served queue per backend
(``fair_queue``), one active run per session, with a maximum queue size answered as ``busy``.
Without a policy ``stream`` behaves as before: the Python API stays fully open to the app's code.

    policy = Policy.from_file("catalogue.toml")       # or Policy(catalogue=[CatalogueEntry(...)])
    button.click(lambda p, m: stream("diffusers", prompt=p, model=m, policy=policy), ...)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

from .bundled import resolve_model
from .fair_queue import FairQueue
from .request import GenerationRequest, InvalidRequest, build_request

if TYPE_CHECKING:
    from .backend import Backend, Capabilities


@dataclass(frozen=True)
class CatalogueEntry:
    """One choice a visitor can make: ``id`` (what the API takes as ``model``) and ``label``
    (what the UI shows) stand for ``backend`` + ``model`` + the app's fixed ``options``.
    ``model = "bundled:shapes"`` stands for the shapes model shipped in the package (its folder,
    wherever the package is installed).

    ``visitor_options`` names the request options a visitor may set (e.g. ``scheduler``); any
    other option a visitor sends is refused, and ``options`` (the app's) always win. Where the
    backend lists an option's values (``Capabilities.option_choices``) a visitor must pick one
    of them; ``option_choices`` here narrows that list for this entry (e.g. only the
    previewers this model has), and names the only values of an option the backend leaves
    free.
    """

    id: str
    backend: str
    model: str | None = None
    label: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    visitor_options: tuple[str, ...] = ("scheduler",)
    option_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    """What the model is good at, for people (Markdown); a UI shows it with the model."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", resolve_model(self.model))

    @property
    def title(self) -> str:
        return self.label or self.id


@dataclass(frozen=True)
class Limits:
    """How much one visitor's run may ask for; each bound is checked before the backend's own."""

    max_prompt_chars: int = 1000
    max_negative_prompt_chars: int = 1000
    max_steps: int = 50
    max_side: int = 1024
    max_images: int = 4
    time_limit: float = 300.0
    """Seconds a run may take (waiting in the queue excluded); then it ends with reason timeout."""
    # -- input images (image-to-image, inpainting, editing) --
    max_input_bytes: int = 10_000_000
    """The most bytes an uploaded input image or mask may have (its file, before decoding)."""
    max_input_pixels: int = 2048 * 2048
    """The most pixels an input image or mask may have (checked before decoding)."""


NUMBER_FIELDS = ("steps", "guidance", "seed", "width", "height", "num_images")
DEFAULT_SLOTS = 1
"""Runs a backend may do at once unless the policy says otherwise (one pipeline, one run)."""

_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:\\|~/|/)(?:[^\s'\"`,;()<>]+)")


@dataclass
class Policy:
    """The rules of a public app; see the module docstring. Defaults suit a public Space."""

    catalogue: list[CatalogueEntry]
    limits: Limits = field(default_factory=Limits)
    runs_per_session: int = 1
    max_queue: int = 16
    """Runs that may wait per backend; one more is answered busy with a retry time."""
    slots: dict[str, int] = field(default_factory=dict)
    """Runs each backend may do at once (backend id -> count; others: ``DEFAULT_SLOTS``)."""
    image_max_age: float = 3600.0
    """Seconds a final image file stays in the cache before it is removed; in an app with the
    library's Edit tabs, uploads too (``upload_expiry``)."""
    runs_per_client: int = 2
    """Runs one client (its network address) may have waiting or running, whatever session
    hashes it sends: a script opening 20 sessions holds no more of the line than this."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of proxies whose ``X-Forwarded-For`` names the
    client; ``"private"`` trusts every private and loopback address (a Space: the platform's
    proxy is the only direct peer). From anyone else the header is ignored."""
    max_body_bytes: int = 1_000_000
    """The largest request body the app reads (uploads excepted); larger ones get 413 unread."""
    max_file_size: int = 10_000_000
    """The largest upload, where the app has an upload control (without one, every upload is
    refused)."""

    def __post_init__(self) -> None:
        if not self.catalogue:
            raise ValueError("Policy: the catalogue is empty; add at least one CatalogueEntry.")
        ids = [entry.id for entry in self.catalogue]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"Policy: catalogue ids must be unique; repeated: {duplicates}.")
        if self.runs_per_session < 1 or self.runs_per_client < 1 or self.max_queue < 0:
            raise ValueError(
                "Policy: runs_per_session and runs_per_client must be >= 1 and max_queue >= 0."
            )
        self.trusted_proxies = tuple(self.trusted_proxies)
        self.queue = FairQueue(
            slots=lambda backend: self.slots.get(backend, DEFAULT_SLOTS),
            max_waiting=self.max_queue,
            runs_per_session=self.runs_per_session,
            runs_per_client=self.runs_per_client,
        )

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Policy:
        """A policy from a TOML or JSON file: ``[[catalogue]]`` tables (id, backend, model,
        label, options, visitor_options), an optional ``[limits]`` table, and the top-level
        ``runs_per_session``, ``max_queue``, ``slots`` and ``image_max_age``."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        return cls.from_dict({**data, **overrides})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        data = dict(data)
        entries = [
            CatalogueEntry(
                **{
                    **entry,
                    "visitor_options": tuple(entry.get("visitor_options", ("scheduler",))),
                    "option_choices": {
                        name: tuple(values)
                        for name, values in entry.get("option_choices", {}).items()
                    },
                }
            )
            for entry in data.pop("catalogue", [])
        ]
        limits = Limits(**data.pop("limits", {}))
        return cls(catalogue=entries, limits=limits, **data)

    # -- the catalogue ------------------------------------------------------------------------

    def entries_for(self, backend: str | None = None) -> list[CatalogueEntry]:
        return [e for e in self.catalogue if backend is None or e.backend == backend]

    @property
    def concurrency_limit(self) -> int:
        """The ``concurrency_limit`` for the Gradio event that runs under this policy: every
        run the backends' lines can hold (their slots plus ``max_queue`` each), plus one, so a
        request beyond them reaches the line and is answered ``busy`` at once instead of
        waiting, unseen and unbounded, in Gradio's own queue."""
        return sum(self.slots.get(b, DEFAULT_SLOTS) + self.max_queue for b in self.backends()) + 1

    def backends(self) -> list[str]:
        """The backends the catalogue uses, in catalogue order."""
        return list(dict.fromkeys(entry.backend for entry in self.catalogue))

    def entry(self, backend: str, choice: Any) -> CatalogueEntry:
        """The entry a visitor chose (by id or label) for ``backend``; ``None`` picks the
        backend's first entry. Anything else is refused with the same message, whatever it
        names (a path that exists or not), so the refusal tells nothing about the server."""
        entries = self.entries_for(backend)
        if not entries:
            offered = ", ".join(self.backends())
            raise InvalidRequest(
                backend,
                "backend",
                backend,
                "not a backend this app offers",
                f"choose one of: {offered}.",
            )
        if choice is None or choice == "":
            return entries[0]
        for entry in entries:
            if choice in (entry.id, entry.label):
                return entry
        raise InvalidRequest(
            backend,
            "model",
            _shown(choice),
            "not one of this app's models",
            f"choose one of: {', '.join(e.id for e in entries)}.",
        )

    # -- a visitor's request ------------------------------------------------------------------

    def admit(
        self, entry: CatalogueEntry, backend: Backend, fields: Mapping[str, Any]
    ) -> GenerationRequest:
        """The request to run for a visitor's ``fields`` on ``entry``: typed (a wrong type is
        refused naming the field), held to the limits, with the entry's real model and fixed
        options in place. Raises ``InvalidRequest`` naming the field and the rule."""
        options = fields.get("options") or {}
        if not isinstance(options, Mapping):
            raise InvalidRequest(
                backend.id,
                "options",
                _shown(options),
                "options must be an object of name-value pairs",
                'send e.g. {"scheduler": "euler_a"}, or {}.',
            )
        for name in options:
            if name not in entry.visitor_options:
                allowed = ", ".join(entry.visitor_options) or "none"
                raise InvalidRequest(
                    backend.id,
                    f"options.{name}",
                    _shown(options[name]),
                    "not an option visitors may set in this app",
                    f"remove it; options you may set: {allowed}.",
                )
        choices = self.option_choices(entry, backend)
        typed = backend.capabilities_for(entry.model).options_model
        if typed is not None:  # an alias (euler_a) is its choice (Euler a)
            options = {name: typed.canonical(name, value) for name, value in options.items()}
        for name, value in options.items():
            if name in choices and value not in choices[name]:
                raise InvalidRequest(
                    backend.id,
                    f"options.{name}",
                    _shown(value),
                    f"not one of this app's choices for {name}",
                    f"choose one of: {', '.join(choices[name])}.",
                )
        for name in NUMBER_FIELDS:
            if isinstance(fields.get(name), bool):
                raise InvalidRequest(
                    backend.id,
                    name,
                    fields[name],
                    "a number, not true or false",
                    f"send {name} as a number.",
                )
        fields = self._decoded_inputs(backend.id, fields)
        request = build_request(
            backend,
            {**fields, "model": entry.model, "options": {**options, **entry.options}},
        )
        self.check_limits(backend.id, request)
        return self._bounded_defaults(request, backend)

    def _decoded_inputs(self, backend_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` with an uploaded input image and mask decoded, refused beyond
        ``max_input_bytes`` (from the encoded length, before a byte is decoded) or
        ``max_input_pixels`` (from the file's header, before its pixels are decoded)."""
        from .input_image import ImageProblem, decode, encoded_bytes

        bound, fields = self.limits.max_input_bytes, dict(fields)
        for name in ("init_image", "mask_image"):
            value = fields.get(name)
            size = encoded_bytes(value)
            if size is not None and size > bound:
                raise InvalidRequest(
                    backend_id,
                    name,
                    f"<{size} bytes>",
                    f"at most {bound} bytes in this app",
                    "send a smaller file (scale the picture down, or save it as JPEG).",
                )
            if value is None or value == "":
                continue
            try:
                fields[name] = decode(value, name, self.limits.max_input_pixels)
            except ImageProblem as problem:
                raise InvalidRequest(
                    backend_id, name, problem.shown, problem.rule, problem.fix
                ) from None
        return fields

    def _bounded_defaults(self, request: GenerationRequest, backend: Backend) -> GenerationRequest:
        """Fields the visitor left unset take the model's defaults, held to the limits (a
        backend defaulting to 1024 px under a 512 px limit runs at 512)."""
        caps = backend.capabilities_for(request.model)
        limits, update = self.limits, {}
        if request.steps is None and caps.steps and caps.default_steps > limits.max_steps:
            update["steps"] = limits.max_steps
        for index, name in enumerate(("width", "height")):
            if getattr(request, name) is None and caps.default_size[index] > limits.max_side:
                update[name] = max(
                    caps.min_size, limits.max_side // caps.size_multiple * caps.size_multiple
                )
        image = request.init_image
        unsized = request.width is None and request.height is None
        if image is not None and unsized and not caps.sizes:  # the input's size, held to limits
            from .input_image import fitted_size

            top = min(caps.max_size, limits.max_side)
            update["width"], update["height"] = fitted_size(
                image, caps.size_multiple, caps.min_size, top
            )
        return request.model_copy(update=update) if update else request

    def option_choices(self, entry: CatalogueEntry, backend: Backend) -> dict[str, tuple]:
        """The values a visitor may pick for each option of ``entry`` that has a fixed set:
        the backend's list, narrowed by the entry's (the entry's alone where the backend
        leaves the option free). Options visitors may not set are left out."""
        caps = backend.capabilities_for(entry.model)
        offered = caps.option_choices  # what runs on it
        choices = {}
        for name in entry.visitor_options:
            values = offered.get(name)
            narrowed = entry.option_choices.get(name)
            if narrowed is not None and caps.options_model is not None:
                narrowed = tuple(caps.options_model.canonical(name, v) for v in narrowed)
            if narrowed is not None:
                values = tuple(v for v in narrowed if values is None or v in values)
            if values:
                choices[name] = tuple(values)
        return choices

    def controls(self, entry: CatalogueEntry, backend: Backend) -> Capabilities:
        """What a UI should offer for ``entry``: its model's capabilities (ranges and
        defaults) held to this policy's limits, so every control's range is a request the
        policy admits."""
        caps = backend.capabilities_for(entry.model)
        limits = self.limits
        top_steps = max(caps.steps_range[0], min(caps.steps_range[1], limits.max_steps))
        max_size = max(caps.min_size, min(caps.max_size, limits.max_side))
        max_size -= (max_size - caps.min_size) % caps.size_multiple
        return caps.model_copy(
            update={
                "steps_range": (caps.steps_range[0], top_steps),
                "default_steps": min(caps.default_steps, top_steps),
                "max_size": max_size,
                "default_size": tuple(min(side, max_size) for side in caps.default_size),
                "max_batch": max(1, min(caps.max_batch, limits.max_images)),
            }
        )

    def check_limits(self, backend_id: str, request: GenerationRequest) -> None:
        """Refuse a (typed or resolved) request beyond the limits, naming the field and rule."""
        limits = self.limits
        for name, bound in (
            ("prompt", limits.max_prompt_chars),
            ("negative_prompt", limits.max_negative_prompt_chars),
        ):
            text = getattr(request, name)
            if len(text) > bound:
                raise InvalidRequest(
                    backend_id,
                    name,
                    f"<{len(text)} characters>",
                    f"at most {bound} characters in this app",
                    f"shorten the {name.replace('_', ' ')}.",
                )
        for name, bound, unit in (
            ("steps", limits.max_steps, "steps"),
            ("width", limits.max_side, "pixels"),
            ("height", limits.max_side, "pixels"),
            ("num_images", limits.max_images, "images"),
        ):
            value = getattr(request, name)
            if value is not None and value > bound:
                raise InvalidRequest(
                    backend_id,
                    name,
                    value,
                    f"at most {bound} {unit} in this app",
                    f"use {bound} or fewer.",
                )
        for name in ("init_image", "mask_image"):
            image = getattr(request, name)
            if image is not None and image.size[0] * image.size[1] > limits.max_input_pixels:
                from .input_image import describe

                raise InvalidRequest(
                    backend_id,
                    name,
                    describe(image),
                    f"at most {limits.max_input_pixels} pixels in this app",
                    "scale the picture down before sending it.",
                )

    def scrub(self, text: str | None, entry: CatalogueEntry | None = None) -> str | None:
        """``text`` with the entry's model shown as its catalogue id and every other absolute
        path (model folders, caches, home folders) replaced, so no server path reaches a
        visitor."""
        if not text:
            return text
        if entry is not None and entry.model:
            own = re.compile(rf"(?<![\w/.-]){re.escape(entry.model)}(?![\w/.-])")
            text = own.sub(entry.id, text)
        return _ABSOLUTE_PATH.sub("<server path>", text)


def _shown(value: Any, limit: int = 80) -> Any:
    """A visitor's value as it may be echoed back: long text cut short."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def catalogue_choices(policy: Policy, backend: str) -> list[tuple[str, str]]:
    """(label, id) pairs of a backend's entries, for a dropdown."""
    return [(entry.title, entry.id) for entry in policy.entries_for(backend)]
