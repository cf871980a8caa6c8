"""The backend contract: what every image-generation backend declares and implements.

A backend is an object with an identity (``id``, ``display_name``, ``location``), a
``Capabilities`` record that the central request validation reads, a list of models, and a
``generate(request, control)`` generator of events (see ``events``). Subclass ``Backend`` and
register an instance from a plugin's ``register_backends`` hook.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .control import RunControl
    from .events import GenerationEvent
    from .request import GenerationRequest


class ModelInfo(BaseModel):
    """One model a backend offers."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    description: str = ""


class Capabilities(BaseModel):
    """What a backend can do; requests are validated against this before any work starts."""

    model_config = ConfigDict(frozen=True)

    step_previews: bool = True
    negative_prompt: bool = True
    seed: bool = True
    guidance: bool = True
    guidance_range: tuple[float, float] = (0.0, 30.0)
    default_guidance: float = 7.5
    size_multiple: int = Field(8, ge=1)
    min_size: int = Field(64, ge=1)
    max_size: int = Field(2048, ge=1)
    default_size: tuple[int, int] = (512, 512)
    steps_range: tuple[int, int] = (1, 150)
    default_steps: int = 20
    max_batch: int = Field(4, ge=1)
    cancel: bool = True
    finish_early: bool = False
    any_model: bool = False
    """True when the backend accepts models beyond those it lists (paths, hub repo ids)."""
    options: dict[str, str] = Field(default_factory=dict)
    """Backend-specific request options this backend understands: name -> description."""


class Backend(ABC):
    """Base class for image-generation backends. Subclasses set the class attributes and
    implement ``generate``; ``models`` may be overridden to list models lazily."""

    id: ClassVar[str]
    display_name: ClassVar[str]
    location: ClassVar[Literal["local", "remote"]]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def models(self) -> Sequence[ModelInfo]:
        """The models this backend offers; may do I/O, so it is called only when needed."""
        return []

    def default_model(self) -> str | None:
        """The model used when a request names none: the first listed, by default."""
        listed = self.models()
        return listed[0].id if listed else None

    @abstractmethod
    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        """Yield ``Started``, then ``Step`` events, then ``Finished`` or one ``Failed``.

        ``request`` has already been validated against ``capabilities`` and has its model,
        size, steps and seed filled in. Check ``control.cancelled`` at least once per step and
        return promptly when it is set. Report failures as a ``Failed`` event, not an exception.
        """

    def describe(self) -> dict:
        """A JSON-ready description of this backend (used by the CLI and ``list_plugins``)."""
        return {
            "id": self.id,
            "display_name": self.display_name,
            "location": self.location,
            "capabilities": self.capabilities.model_dump(mode="json"),
        }
