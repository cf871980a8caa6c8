"""How the kit reports: the error a failed check raises, the report ``check_backend`` returns,
and the short phrases that describe a backend's events and the component's states in both.

Every failure message is built here, so all checks word what they saw the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import PIL.Image

from ..events import Cancelled, Failed, Finished, ImageReady, Started, Status, Step


class ConformanceError(AssertionError):
    """A backend broke the contract: ``backend``, ``check``, ``expected`` and ``seen`` say how,
    and ``fix`` what the plugin's author changes (every failure the kit raises has one, shown
    as the message's ``fix:`` line; tests/test_kit_fix_lines.py holds the kit to it).

    When raised by ``check_backend`` it sums up several failures: ``failures`` holds each one.
    """

    def __init__(
        self,
        backend: str,
        check: str,
        expected: str,
        seen: str,
        events: str | None = None,
        failures: Sequence[ConformanceError] = (),
        fix: str | None = None,
    ) -> None:
        self.backend, self.check, self.expected, self.seen = backend, check, expected, seen
        self.fix = fix
        self.failures = list(failures)
        self.report: ConformanceReport | None = None  # set by check_backend
        message = f"Backend '{backend}' fails the {check} check: expected {expected}; saw {seen}."
        if fix:
            message += f"\n    fix: {fix}"
        if events:
            message += f"\n    events: {events}"
        super().__init__(message)


@dataclass
class ConformanceReport:
    """What ``check_backend`` found: the checks that passed, were skipped (and why) or failed."""

    backend: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"Conformance of backend '{self.backend}': {len(self.passed)} passed, "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed"
        ]
        lines += [f"  passed  {name}" for name in self.passed]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"  FAILED  {name}" for name in self.failed]
        return "\n".join(lines)


def backend_name(backend: Any) -> str:
    """The name a report gives a backend: its ``id``, or its class name when it has none."""
    return str(getattr(backend, "id", None) or type(backend).__name__)


def describe_event(event: Any) -> str:
    """One short phrase for an event, e.g. ``Step 2/8 [32x32x3]``."""
    if isinstance(event, Started):
        preview = (
            f", preview {event.preview_size[0]}x{event.preview_size[1]}"
            if event.preview_size
            else ""
        )
        return (
            f"Started(total_steps={event.total_steps}, {event.width}x{event.height}, "
            f"seeds={event.seeds}{preview})"
        )
    if isinstance(event, Step):
        if event.preview is None:
            return f"Step {event.step}/{event.total_steps}"
        preview = event.preview
        if isinstance(preview, list | tuple):
            size = ", ".join(describe_image(p) for p in preview) or "empty list"
        else:
            size = describe_image(preview)
        return f"Step {event.step}/{event.total_steps} [{size}]"
    if isinstance(event, Status):
        where = [
            f"{name}={value!r}"
            for name, value in (
                ("position", event.position),
                ("queue_size", event.queue_size),
                ("eta", event.eta),
                ("progress", event.progress),
            )
            if value is not None
        ]
        return f"Status({', '.join([repr(event.phase), *where])})"
    if isinstance(event, ImageReady):
        return f"ImageReady({event.index!r}, {describe_image(event.image)}, seed={event.seed!r})"
    if isinstance(event, Finished):
        sizes = ", ".join(
            f"{i.width}x{i.height}" if isinstance(i, PIL.Image.Image) else type(i).__name__
            for i in event.images
        )
        early = ", early" if event.early else ""
        return f"Finished({len(event.images)} image(s) {sizes}, seeds={event.seeds}{early})"
    if isinstance(event, Failed):
        return f"Failed({event.reason}: {event.message})"
    if isinstance(event, Cancelled):
        return f"Cancelled(acknowledged={event.acknowledged!r}, detail={event.detail!r})"
    return f"<{type(event).__name__}>"


def describe_image(image: Any) -> str:
    """``WxH`` for a PIL image, the shape for an array (``HxWxC``), else the type's name."""
    if isinstance(image, PIL.Image.Image):
        return f"{image.width}x{image.height}"
    shape = getattr(image, "shape", None)
    return "x".join(str(n) for n in shape) if shape else type(image).__name__


def describe_states(states: list) -> str:
    """The RunStates ``stream()`` yielded, one ``status@step/total`` each."""
    words = [f"{s.status}@{s.step}/{s.total_steps}" for s in states]
    if len(words) > 12:
        words = [*words[:6], "...", *words[-4:]]
    return ", ".join(words) or "<no states>"


def validation_message(error: ValueError) -> str:
    """The messages of a pydantic ValidationError (or a ValueError), without its boilerplate."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors())
    return str(error)
