"""A1111Backend: text-to-image, image-to-image and inpainting on an AUTOMATIC1111, Forge or
SD.Next server started with ``--api`` (``/sdapi/v1/txt2img`` and ``/sdapi/v1/img2img``), with
the server's own live preview of every step relayed.

One backend per configured endpoint (its id is the endpoint's id). Models are the server's
checkpoints (``GET /sdapi/v1/sd-models``, the loaded one first, so that the default never makes
the server switch), or the endpoint's ``models`` when configured; each run names its checkpoint
in ``override_settings``. Request options: ``sampler`` and ``scheduler``, checked against the
server's lists. See docs/backends/a1111.md.

Importing this module and constructing the backend make no network call and import no httpx.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ...backend import MODEL_LIST_SECONDS, Availability, Backend, Capabilities, ModelInfo
from ...endpoints import ENDPOINTS_FILE_VARIABLE, Endpoint, public_url
from ...events import Failed
from ...typed_options import Options
from ..remote_failure import RemoteFailure
from .client import A1111Client
from .protocol import checkpoint_stem
from .reaper import Reaper
from .settings import A1111Settings, parse_settings

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest

log = logging.getLogger(__name__)

KIND = "a1111"
HOW_TO_CONFIGURE = (
    "Fix: start AUTOMATIC1111, Forge or SD.Next with --api and set "
    "DIFFUSION_PREVIEW_A1111_URL=http://127.0.0.1:7860 (plus DIFFUSION_PREVIEW_A1111_USER and "
    "DIFFUSION_PREVIEW_A1111_PASSWORD when it uses --api-auth), or add an endpoint with "
    f'kind = "a1111" to the file named by {ENDPOINTS_FILE_VARIABLE}. '
    "See docs/backends/a1111.md."
)


class A1111Options(Options):
    """The a1111 backend's request options: names from the server's own lists, which only
    the server knows, so their values are checked by it (a wrong one fails with its list)."""

    sampler: str | None = Field(
        None,
        description="a sampler the server lists (GET /sdapi/v1/samplers), by name or alias, "
        "e.g. 'Euler a' or 'DPM++ 2M' (default: the endpoint's, else the server's).",
    )
    scheduler: str | None = Field(
        None,
        description="a scheduler the server lists (GET /sdapi/v1/schedulers, servers from "
        "1.9 on), e.g. 'Karras' (default: the sampler's own).",
    )


CAPABILITIES = Capabilities(
    step_events=True,
    step_previews=True,
    negative_prompt=True,
    seed=True,
    guidance=True,
    guidance_range=(1.0, 30.0),
    default_guidance=7.0,
    size_multiple=8,
    min_size=64,
    max_size=2048,
    default_size=(512, 512),
    steps_range=(1, 150),
    default_steps=20,
    max_batch=8,
    cancel=True,
    finish_early=True,
    image_to_image=True,
    inpainting=True,
    options=A1111Options,
)

NO_PROGRESS_API = {
    "step_events": False,
    "step_previews": False,
    "cancel": False,
    "finish_early": False,
}
"""What a server without ``/internal/progress`` cannot do."""
LOW_MEMORY_FLAGS = ("lowvram", "medvram", "medvram_sdxl")
"""Flags with which AUTOMATIC1111 decodes previews in the sampler instead of at a poll."""


class A1111Backend(Backend):
    """An AUTOMATIC1111 / Forge / SD.Next server's txt2img and img2img, with live previews
    and cancel."""

    id = KIND
    display_name = "AUTOMATIC1111 / Forge / SD.Next"
    location = "remote"

    def __init__(self, endpoint: Endpoint | None = None, *, problem: str | None = None) -> None:
        """
        Parameters:
            endpoint: the server to use; ``None`` makes a backend that says how to configure
                one (its availability is ``not_configured``).
            problem: why the endpoint configuration could not be used, shown instead.

        Raises ``EndpointConfigError`` when the endpoint's ``options`` are wrong.
        """
        self.endpoint = endpoint
        self._problem = problem
        self.settings = A1111Settings()
        self._client: A1111Client | None = None
        self.reaper: Reaper | None = None
        if endpoint is not None:
            if endpoint.kind != KIND:
                raise ValueError(
                    f"A1111Backend needs an endpoint of kind '{KIND}', got '{endpoint.kind}' "
                    f"for endpoint '{endpoint.id}'."
                )
            self.settings = parse_settings(endpoint.id, endpoint.options)
            self.id = endpoint.id
            self.display_name = endpoint.display_name or (
                f"AUTOMATIC1111 / Forge / SD.Next at {public_url(endpoint.url)}"
            )
            self._client = A1111Client(endpoint)
            self.reaper = Reaper(self._client, self.settings.poll_interval)
        self._capabilities = CAPABILITIES
        if not self.settings.previews:
            self._capabilities = CAPABILITIES.model_copy(update={"step_previews": False})
        self.progress_api: bool | None = None
        """Whether the server answers ``/internal/progress``; None until a listing or a run
        found out. False for a server started with ``--nowebui``."""
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    @property
    def capabilities(self) -> Capabilities:
        """The endpoint's capabilities; without ``/internal/progress`` (``--nowebui``) no steps,
        previews, Stop or finish early, since all of them follow our task through it."""
        if self.progress_api is False:
            return self._capabilities.model_copy(update=NO_PROGRESS_API)
        return self._capabilities

    def learn_progress_api(self, present: bool | None) -> None:
        """Remember whether the server has ``/internal/progress``, and say when it has not."""
        if present is False and self.progress_api is not False:
            log.warning("%s", self.no_progress_api_message())
        if present is not None:
            self.progress_api = present

    def no_progress_api_message(self) -> str:
        return (
            f"{self.client.where} has no progress API (/internal/progress answers 404: it was "
            "started with --nowebui, which serves the API alone), so this run shows no steps "
            "or previews and cannot be stopped on the server. Fix: start it with --api instead "
            "(the web UI and the API, e.g. ./webui.sh --api --listen)."
        )

    @property
    def client(self) -> A1111Client:
        if self._client is None:
            raise RemoteFailure(self.availability().message, "unavailable")
        return self._client

    def availability(self) -> Availability:
        """Configured, with credentials complete, and httpx installed (no network call)."""
        endpoint = self.endpoint
        if endpoint is None:
            message = self._problem or (
                "No AUTOMATIC1111 / Forge / SD.Next server is configured. " + HOW_TO_CONFIGURE
            )
            return Availability(state="not_configured", message=message)
        if endpoint.username and endpoint.secret_password() is None:
            variable = endpoint.password_env or "DIFFUSION_PREVIEW_A1111_PASSWORD"
            return Availability(
                state="needs_token",
                message=f"Endpoint '{endpoint.id}' has the username '{endpoint.username}' but no "
                f"password. Fix: set {variable} to the password given to the server's "
                "--api-auth.",
            )
        if importlib.util.find_spec("httpx") is None:
            return Availability(
                state="unavailable",
                message="The a1111 backend needs httpx. Fix: pip install "
                "'gradio-diffusion-preview[a1111]'.",
            )
        return Availability()

    def describe(self) -> dict:
        described = super().describe()
        described["capabilities"] = self.capabilities.model_dump(mode="json")
        if self.endpoint is not None:
            described["endpoint"] = self.endpoint.public()
        return described

    # -- models ------------------------------------------------------------------------------

    def models(self) -> Sequence[ModelInfo]:
        """The endpoint's configured models, or the server's checkpoints, loaded one first."""
        if self.endpoint is None:
            return []
        if self.endpoint.models is not None:
            self.learn_progress_api(self.client.has_progress_api())
            return [ModelInfo(id=model) for model in self.endpoint.models]
        checkpoints = self.checkpoints(max_age=0)
        self.learn_progress_api(self.client.has_progress_api())
        try:
            loaded = self.client.loaded_checkpoint()
        except RemoteFailure:  # the list is still good without knowing which one is loaded
            loaded = None
        listed = []
        for entry in checkpoints:
            model_id = entry.get("model_name") or entry.get("title")
            if not isinstance(model_id, str) or not model_id:
                continue
            is_loaded = loaded is not None and loaded in _aliases(entry)
            listed.append(
                (
                    not is_loaded,
                    ModelInfo(
                        id=model_id,
                        name=entry.get("title") if isinstance(entry.get("title"), str) else None,
                        description="loaded on the server now" if is_loaded else "",
                    ),
                )
            )
        listed.sort(key=lambda item: item[0])  # stable: the server's order otherwise
        unique: dict[str, ModelInfo] = {}
        for _, info in listed:
            unique.setdefault(info.id, info)
        return list(unique.values())

    def checkpoints(self, max_age: float = MODEL_LIST_SECONDS) -> list[dict[str, Any]]:
        """The server's checkpoint list (``/sdapi/v1/sd-models``), reused for ``max_age``."""
        return self._cached("checkpoints", self.client.sd_models, max_age)

    def find_checkpoint(self, model: str) -> dict[str, Any]:
        """The server's checkpoint that ``model`` names (by model_name, title, file name or
        hash, as the server's own aliases do); ``RemoteFailure`` (model_not_found) if none."""
        for max_age in (MODEL_LIST_SECONDS, 0.0):  # a miss asks the server again once
            checkpoints = self.checkpoints(max_age)
            for entry in checkpoints:
                if model in _aliases(entry):
                    return entry
        names = [str(e.get("model_name") or e.get("title")) for e in checkpoints]
        raise RemoteFailure(
            f"{self.client.where} has no checkpoint '{model}'. Fix: choose one it has: "
            f"{', '.join(names) or '(none)'}; or add the file to its models/Stable-diffusion "
            "folder and refresh its checkpoints.",
            "model_not_found",
        )

    def find_sampler(self, name: str) -> str:
        """The server's name for the sampler called ``name`` (or one of its aliases)."""
        samplers = self._cached("samplers", self.client.samplers, MODEL_LIST_SECONDS)
        return _pick(name, samplers, ("name", "aliases"), "sampler", self.client.where)

    def find_scheduler(self, name: str) -> str:
        """The server's name for the scheduler called ``name`` (name, label or alias)."""
        schedulers = self._cached("schedulers", self.client.schedulers, MODEL_LIST_SECONDS)
        if schedulers is None:
            raise RemoteFailure(
                f"{self.client.where} has no separate schedulers (it is older than 1.9). Fix: "
                "leave 'scheduler' unset and name a sampler that includes it, e.g. "
                "'DPM++ 2M Karras'.",
                "invalid_request",
            )
        return _pick(name, schedulers, ("name", "label", "aliases"), "scheduler", self.client.where)

    def decodes_previews_at_polls(self) -> bool:
        """False when the server decodes its previews in the sampler, not at a poll:
        AUTOMATIC1111's ``lowvram.apply`` turns ``parallel_processing_allowed`` off for
        --lowvram and --medvram (and --medvram-sdxl, for SDXL). Unknown flags count as True."""
        try:
            flags = self._cached("cmd_flags", self.client.cmd_flags, MODEL_LIST_SECONDS)
        except RemoteFailure:
            return True
        return not any(flags.get(name) is True for name in LOW_MEMORY_FLAGS)

    def forget_models(self) -> None:
        super().forget_models()
        with self._cache_lock:
            self._cache.clear()

    def _cached(self, key: str, fetch: Callable[[], Any], max_age: float) -> Any:
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        value = fetch()
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    # -- a run -------------------------------------------------------------------------------

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        availability = self.availability()  # checked by validation too; cheap, no network
        if not availability.usable:
            yield Failed(availability.message, availability.reason)
            return
        from .run import Txt2ImgRun

        yield from Txt2ImgRun(self, request, control).events()


def _aliases(entry: dict[str, Any]) -> set[str]:
    """The names a server accepts for a checkpoint (its ``checkpoint_aliases``)."""
    names = set()
    for key in ("title", "model_name", "hash", "sha256"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            names.add(value)
    title = entry.get("title")
    if isinstance(title, str):
        names.add(title.split(" [", 1)[0])  # the file name, without " [hash]"
        stem = checkpoint_stem(title.split(" [", 1)[0])
        if stem:
            names.add(stem)
    stem = checkpoint_stem(entry.get("filename") if isinstance(entry.get("filename"), str) else "")
    if stem:
        names.add(stem)
    return names


def _pick(
    name: str, items: list[dict[str, Any]], keys: tuple[str, ...], what: str, where: str
) -> str:
    wanted = name.strip().lower()
    for item in items:
        for key in keys:
            value = item.get(key)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and v.lower() == wanted for v in values):
                return str(item.get("name"))
    names = [str(item.get("name")) for item in items if item.get("name")]
    raise RemoteFailure(
        f"{where} has no {what} '{name}'. Fix: choose one of: {', '.join(names) or '(none)'}.",
        "invalid_request",
    )
