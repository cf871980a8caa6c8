"""RayBackend: runs on a Ray Serve application that hosts another backend, streaming its events.

The application (``serving``; ``python -m gradio_diffusion_preview serve run``) hosts a
registered backend, ``diffusers`` by default, on replicas with their own GPUs. This backend
mirrors it: its capabilities, availability and models are the hosted backend's (learned from the
replicas: ``describe()`` on first use, refreshed by every run), and ``generate`` streams the
run's events from a replica through Serve's streaming handle, so the widget cannot tell it from
a local run. Stop cancels the Serve call; "Use this preview" reaches the replica through the
``RunSignals`` actor (the steps it makes before it hears are not shown, only its final image);
Serve's failures become ``Failed`` events (``failures``).

Configured on the server like the remote endpoints (``gradio_diffusion_preview.endpoints``),
kind ``ray``: ``url`` is the Ray address (``auto``: the cluster whose node this process runs on;
Serve's streaming handles do not work through Ray Client, ``ray://``), and ``options``
may name the ``app`` (default ``diffusion-preview``) and the ``backend`` it hosts (default
``diffusers``; its locally installed capabilities stand in until the replicas answer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...backend import (
    MODEL_LIST_SECONDS,
    USABLE,
    Availability,
    Backend,
    Capabilities,
    ModelInfo,
    ModelListingError,
    split_fix,
)
from ...endpoints import Endpoint
from ...events import Failed, Started
from ...progress import RUN_DURATIONS
from ...serving.settings import DEFAULT_APP
from .connection import RayConnection, RayUnreachable
from .failures import busy, failure_for, retry_wait
from .serve_run import Refused, ServeRun

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest

log = logging.getLogger(__name__)

KIND = "ray"
INSTALL_HINT = "pip install 'gradio-diffusion-preview[ray]'"
NOT_CONFIGURED = (
    "No Ray Serve application is configured. Fix: start one with `python -m "
    "gradio_diffusion_preview serve run diffusers` (docs/scaling.md), then set "
    "DIFFUSION_PREVIEW_RAY_URL=auto where the Gradio app runs (on a node of the Ray cluster), "
    'or add an endpoint of kind "ray" to the DIFFUSION_PREVIEW_ENDPOINTS file.'
)
RAY_CLIENT = (
    "Serve's streaming handles do not work through Ray Client (the endpoint's url is {url!r}). "
    "Fix: run the Gradio app on a node of the Ray cluster (`ray start --address=<head>:6379` "
    "on its machine) and set the url to auto."
)


class RayBackend(Backend):
    """A backend hosted on a Ray Serve application, mirrored here."""

    id = KIND
    display_name = "Ray Serve"
    location = "remote"

    def __init__(self, endpoint: Endpoint | None = None, *, problem: str | None = None) -> None:
        """
        Parameters:
            endpoint: the application to call (kind ``ray``): ``url`` the Ray address,
                ``options`` ``app`` and ``backend``; ``models`` limits the models offered,
                ``timeout`` bounds a run, ``connect_timeout`` a description call. ``None``
                registers a backend that says how to configure one.
            problem: why the configuration could not be read (shown as its availability).
        """
        self.endpoint = endpoint
        self.problem = problem
        options = endpoint.options if endpoint else {}
        self.app = str(options.get("app") or DEFAULT_APP)
        self.hosted = str(options.get("backend") or "diffusers")
        if endpoint is not None:
            self.id = endpoint.id
            self.display_name = endpoint.display_name or f"{self.hosted} on Ray Serve ({self.app})"
        self._connection = RayConnection(endpoint.url, self.app, self.hosted) if endpoint else None
        self._described: tuple[float, dict[str, Any], Capabilities] | None = None
        self._described_lock = threading.Lock()
        self._asking = threading.Lock()

    @classmethod
    def for_app(
        cls, app: str = DEFAULT_APP, *, address: str = "auto", id: str = KIND, **fields: Any
    ) -> RayBackend:
        """A backend for the application ``app`` on the cluster at ``address``; ``fields`` are
        further ``Endpoint`` fields (``display_name``, ``models``, ``timeout``, ``options``)."""
        options = {"app": app, **fields.pop("options", {})}
        return cls(Endpoint(id=id, kind=KIND, url=address, options=options, **fields))

    # --- what the replicas say -----------------------------------------------------------

    def _description(self, max_age: float | None = None) -> dict[str, Any] | None:
        """The replicas' last description of the hosted backend (no older than ``max_age``
        seconds, when given)."""
        with self._described_lock:
            if self._described is None:
                return None
            taken, description, _ = self._described
        if max_age is not None and time.monotonic() - taken > max_age:
            return None
        return description

    def _learn(self, description: dict[str, Any] | None) -> None:
        if not isinstance(description, dict) or "capabilities" not in description:
            return
        capabilities = Capabilities.model_validate(description["capabilities"])
        with self._described_lock:
            self._described = (time.monotonic(), description, capabilities)

    def _describe_now(self) -> dict[str, Any]:
        """Ask a replica; a busy pool (every replica at work, the queue full) answers with the
        last description instead, if there is one. Raises ``RayUnreachable`` and Ray's errors."""
        return _off_the_event_loop(self._ask_once)

    def _ask_once(self) -> dict[str, Any]:
        """One question at a time: runs that start together (a burst on a fresh app) share
        one answer instead of filling the application's queue with descriptions."""
        with self._asking:
            fresh = self._description(MODEL_LIST_SECONDS)
            return fresh if fresh is not None else self._ask_a_replica()

    def _ask_a_replica(self) -> dict[str, Any]:
        assert self._connection is not None and self.endpoint is not None
        response = self._connection.handle().describe.remote()
        try:
            description = response.result(timeout_s=self.endpoint.connect_timeout)
        except Exception as error:
            _cancel(response)
            last = self._description()
            if last is not None and _busy(error):
                return last
            raise
        self._learn(description)
        return description

    @property
    def capabilities(self) -> Capabilities:
        """The hosted backend's, as its replicas last described them; until then those of
        the locally installed backend of that id, if any."""
        with self._described_lock:
            if self._described is not None:
                return self._described[2]
        return _local_capabilities(self.hosted)

    def availability(self) -> Availability:
        if self.problem:
            return Availability(state="not_configured", message=self.problem)
        if self.endpoint is None:
            return Availability(state="not_configured", message=NOT_CONFIGURED)
        if self.endpoint.url.startswith("ray://"):
            return Availability(
                state="unavailable", message=RAY_CLIENT.format(url=self.endpoint.url)
            )
        if importlib.util.find_spec("ray") is None:
            return Availability(
                state="unavailable",
                message=f"The ray backend needs Ray Serve. Fix: {INSTALL_HINT}",
            )
        description = self._description()
        if description is not None:
            hosted = Availability.model_validate(description.get("availability") or {})
            if not hosted.usable:
                return Availability(
                    state=hosted.state,
                    message=f"On the Ray Serve replicas of '{self.app}': {hosted.message}",
                )
        return USABLE

    def models(self) -> Sequence[ModelInfo]:
        if self._connection is None:
            return []
        try:
            # A run's first message describes the backend too: no call while runs go on.
            description = self._description(MODEL_LIST_SECONDS) or self._describe_now()
        except Exception as error:
            if not isinstance(error, RayUnreachable) and _gone(error):
                self._connection.reconnect()
            raise _why(error, self.app) from None
        if description.get("models") is None:
            # The replica's own listing error, which names its backend: said once, here.
            cause, fix = split_fix(str(description.get("models_error") or "no reason given"))
            cause = re.sub(r"^Backend '[^']*' could not list its models: ", "", cause)
            raise ModelListingError(
                f"its replicas' backend '{description.get('id', self.hosted)}' (Ray Serve "
                f"application '{self.app}') says: {cause}",
                fix=fix,
            )
        models = [ModelInfo.model_validate(model) for model in description["models"]]
        wanted = self.endpoint.models if self.endpoint else None
        return [m for m in models if m.id in wanted] if wanted else models

    def describe(self) -> dict:
        described = super().describe()
        described["hosts"] = self.hosted
        described["app"] = self.app
        if self.endpoint is not None:
            described["endpoint"] = self.endpoint.public()
        return described

    # --- a run --------------------------------------------------------------------------

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        if self._connection is None or self.endpoint is None:
            yield Failed(self.problem or NOT_CONFIGURED, "unavailable")
            return
        shown_started: Started | None = None
        previews = self.capabilities_for(request.model).step_previews
        for attempt in (1, 2):
            try:
                handle = self._connection.handle()
                signals = self._connection.signals() if self.capabilities.finish_early else None
            except Exception as error:
                yield self._failure(error, None, request)
                return
            run = ServeRun(
                handle,
                signals,
                request,
                control,
                self.endpoint.timeout,
                self._learn,
                self._connection.admission,
                self._connection.limits(),
                shown_started,
                previews,
            )
            try:
                yield from run.events()
                return
            except Refused as refused:
                wait = retry_wait(refused.limits.retry_after, self._typical(request))
                yield busy(self.app, wait)
                return
            except Exception as error:
                if run.timed_out:
                    yield Failed(
                        f"The run on the Ray Serve application '{self.app}' took longer than "
                        f"{self.endpoint.timeout:g} s and was stopped; ask for fewer steps or "
                        "a smaller image, or raise the endpoint's timeout.",
                        "timeout",
                    )
                    return
                if control.cancelled:
                    return
                if _gone(error):
                    # Removed, or redeployed under a new Serve controller: find it anew, and
                    # send a run that never reached a replica once more.
                    self._connection.reconnect()
                    if attempt == 1 and not run.reached_replica:
                        shown_started = run.shown_started
                        continue
                yield self._failure(error, run.replica, request)
                return
            finally:
                if signals is not None:
                    _forget(signals, run.run_id)

    def _typical(self, request: GenerationRequest) -> float | None:
        return RUN_DURATIONS.expected(self.id, request.model)

    def _failure(
        self, error: BaseException, replica: str | None, request: GenerationRequest
    ) -> Failed:
        return failure_for(
            error,
            backend_id=self.id,
            app=self.app,
            replica=replica,
            typical_run=self._typical(request),
            hosted=self.hosted,
        )


def _local_capabilities(backend_id: str) -> Capabilities:
    from ...plugins import get_registry

    try:
        return get_registry().backends()[backend_id].capabilities
    except Exception:  # not installed here, or a registry that cannot load
        return Capabilities()


def _off_the_event_loop(call: Any) -> Any:
    """``call()``, on a worker thread when this thread runs an asyncio loop (an async Gradio
    handler, Playwright's sync API): Serve refuses blocking ``result()`` calls on such a
    thread ("Sync methods should not be called from within an asyncio event loop")."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gdp-ray-describe") as pool:
        return pool.submit(call).result()


def _busy(error: BaseException) -> bool:
    """A description call that found every replica at work."""
    from ray.serve.exceptions import BackPressureError

    return isinstance(error, BackPressureError | TimeoutError)


def _gone(error: BaseException) -> bool:
    """The application itself is gone, broken or moved to a new Serve controller: its handle
    (and Serve's link to the controller) must be made again."""
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import DeploymentUnavailableError, RayServeException

    return (
        isinstance(error, DeploymentUnavailableError | RayActorError)
        or type(error) is RayServeException
    )


def _why(error: BaseException, app: str) -> ModelListingError:
    """The listing error for a replica that could not be asked: its cause, its one fix."""
    if isinstance(error, RayUnreachable):
        return ModelListingError(error.cause, fix=error.fix)
    log.warning("the Ray Serve application %r did not describe its backend", app, exc_info=error)
    return ModelListingError(
        f"the Ray Serve application '{app}' did not describe its backend", fix="try again"
    )


def _cancel(response: Any) -> None:
    # It may never have reached a replica (a full queue), or have ended already.
    with contextlib.suppress(Exception):
        response.cancel()


def _forget(signals: Any, run_id: str) -> None:
    with contextlib.suppress(Exception):
        signals.forget.remote(run_id)
