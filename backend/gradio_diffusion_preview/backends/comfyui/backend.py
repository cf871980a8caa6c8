"""ComfyUIBackend: one ComfyUI server, configured on the server as an ``Endpoint``.

Importing this module is cheap: httpx and websockets (the ``[comfyui]`` extra) load when the
backend first talks to the server. ``availability()`` never touches the network; an unreachable
server fails the run (``unavailable``) and the model listing.

Request options: ``sampler`` and ``scheduler``, among those the server lists.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ...backend import Availability, Backend, Capabilities, ModelInfo
from ...endpoints import ENDPOINTS_FILE_VARIABLE
from ...events import Failed
from ...typed_options import Options
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from ...control import RunControl
    from ...endpoints import Endpoint
    from ...events import GenerationEvent
    from ...request import GenerationRequest
    from .client import ComfyClient

KIND = "comfyui"
INSTALL_HINT = "pip install 'gradio-diffusion-preview[comfyui]'"
NOT_CONFIGURED = (
    "No ComfyUI server is configured. Fix: set DIFFUSION_PREVIEW_COMFYUI_URL (e.g. "
    f"http://127.0.0.1:8188), or add an endpoint of kind 'comfyui' to the file named by "
    f"{ENDPOINTS_FILE_VARIABLE}; see docs/backends/comfyui.md."
)
SAMPLER_LIST_SECONDS = 60.0


class ComfyUIOptions(Options):
    """The ComfyUI backend's request options: names from the server's own lists (checked
    against them at the run, where the server can be asked)."""

    sampler: str | None = Field(
        None,
        description="A sampler the ComfyUI server offers (e.g. euler, euler_ancestral, "
        "dpmpp_2m); another name fails with the server's list.",
    )
    scheduler: str | None = Field(
        None,
        description="A scheduler the ComfyUI server offers (e.g. normal, karras, simple); "
        "another name fails with the server's list.",
    )


class ComfyUIBackend(Backend):
    """Text-to-image on a ComfyUI server, with its step previews relayed over its websocket."""

    display_name = "ComfyUI"
    location = "remote"

    def __init__(self, endpoint: Endpoint | None = None, *, problem: str | None = None) -> None:
        """
        Parameters:
            endpoint: the server and its settings (``Endpoint.options``, see
                ``settings``); None registers a backend that explains how to configure one.
            problem: why the configuration could not be read (shown as its availability).
        """
        self.endpoint = endpoint
        self.id = endpoint.id if endpoint else KIND
        if endpoint is not None:
            default_name = "ComfyUI" if endpoint.id == KIND else f"ComfyUI ({endpoint.id})"
            self.display_name = endpoint.display_name or default_name
        self.problem = problem
        self.settings = Settings()
        if endpoint is not None and problem is None:
            try:
                self.settings = Settings.from_options(endpoint.id, endpoint.options)
            except SettingsError as error:
                self.problem = str(error)
        self._capabilities = _capabilities(self.settings)
        self._client: ComfyClient | None = None
        self._lock = threading.Lock()
        self._choices: dict[tuple[str, str], tuple[float, list[str]]] = {}

    # -- identity and models -------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """The built-in workflow's, or those the configured workflow's marks allow."""
        return self._capabilities

    def availability(self) -> Availability:
        if self.problem:
            return Availability(state="not_configured", message=self.problem)
        if self.endpoint is None:
            return Availability(state="not_configured", message=NOT_CONFIGURED)
        missing = [name for name in ("httpx", "websockets") if not _installed(name)]
        if missing:
            return Availability(
                state="unavailable",
                message=f"The ComfyUI backend needs {' and '.join(missing)}: {INSTALL_HINT}",
            )
        return Availability()

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.endpoint is not None:
            described["endpoint"] = self.endpoint.public()
            workflow = self.settings.workflow
            described["workflow"] = workflow.name if workflow else "built-in text-to-image"
        return described

    def models(self) -> Sequence[ModelInfo]:
        if self.endpoint is None or self.problem:
            return []
        if self.endpoint.models is not None:
            names = list(self.endpoint.models)
        else:
            input_ref = self.checkpoint_input()
            if input_ref is None:  # a user's workflow with its model built in
                return [ModelInfo(id=self.settings.workflow.name, description="ComfyUI workflow")]
            names = self.choices(*input_ref)
        return [
            ModelInfo(id=name, defaults=self.settings.model_defaults.get(name)) for name in names
        ]

    def default_model(self) -> str | None:
        workflow = self.settings.workflow
        own = workflow.default("checkpoint") if workflow else None
        listed = [model.id for model in self.list_models()]
        return own if own in listed else (listed[0] if listed else None)

    def checkpoint_input(self) -> tuple[str, str] | None:
        """(node class, input name) that holds the model file; None when the workflow's model
        is fixed."""
        workflow = self.settings.workflow
        if workflow is None:
            return ("CheckpointLoaderSimple", "ckpt_name")
        ref = workflow.marks.get("checkpoint")
        return (workflow.graph[ref.node]["class_type"], ref.name) if ref else None

    def choices(self, class_type: str, input_name: str) -> list[str]:
        """The server's choices for a list input (checkpoints, samplers), reused for a while."""
        key = (class_type, input_name)
        with self._lock:
            cached = self._choices.get(key)
        if cached and time.monotonic() - cached[0] < SAMPLER_LIST_SECONDS:
            return cached[1]
        values = self.client.combo(class_type, input_name)
        with self._lock:
            self._choices[key] = (time.monotonic(), values)
        return values

    @property
    def client(self) -> ComfyClient:
        """The HTTP client, made on first use (httpx is imported then)."""
        with self._lock:
            if self._client is None:
                from .client import ComfyClient

                self._client = ComfyClient(self.endpoint, self.id)
            return self._client

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- runs ----------------------------------------------------------------------------

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        availability = self.availability()
        if not availability.usable:  # checked by validation too; cheap, no network
            yield Failed(availability.message, availability.reason)
            return
        from .run import ComfyRun  # httpx and websockets load here

        yield from ComfyRun(self, request, control).events()


def _capabilities(settings: Settings) -> Capabilities:
    """The built-in workflow's capabilities, or those a user's workflow marks allow."""
    workflow = settings.workflow
    if workflow is None:
        return Capabilities(
            step_previews=settings.previews,
            guidance_range=(0.0, 30.0),
            default_guidance=7.0,
            size_multiple=8,
            min_size=64,
            max_size=4096,
            default_size=(512, 512),
            steps_range=(1, 150),
            default_steps=20,
            max_batch=4,
            image_to_image=True,
            inpainting=True,
            options=ComfyUIOptions,
        )
    marks = workflow.marks
    steps = int(workflow.default("steps"))
    width, height = int(workflow.default("width")), int(workflow.default("height"))
    cfg = workflow.default("cfg")
    return Capabilities(
        step_previews=settings.previews,
        negative_prompt="negative" in marks,
        seed="seed" in marks,
        guidance="cfg" in marks,
        guidance_range=(0.0, max(30.0, float(cfg or 0))),
        default_guidance=float(cfg) if cfg is not None else 7.0,
        size_multiple=8 if width % 8 == 0 and height % 8 == 0 else 1,
        min_size=min(64, width, height),
        max_size=max(4096, width, height),
        default_size=(width, height),
        steps_range=(1, max(150, steps)),
        default_steps=max(1, steps),
        max_batch=1,
        # an image input: with a denoise, image-to-image; without, editing by the prompt
        image_to_image="image" in marks and "denoise" in marks,
        instruction_editing="image" in marks and "denoise" not in marks,
        inpainting="image" in marks and "mask" in marks,
        options=ComfyUIOptions.subset(
            *(name for name in ComfyUIOptions.model_fields if name in marks)
        ),
    )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
