"""BackendServer: the Ray Serve deployment class that hosts one registered backend per replica.

Each replica loads the plugin registry (installed plugins, the built-in backends and any extra
plugin modules it is given), builds its own instance of the hosted backend and serves two
methods:

- ``generate(request, run_id, signals)``, an async generator: it validates the request again
  (the replica is a service boundary), runs the backend's ``generate`` on its own thread (the
  project's ``BackendRunner``, so the generation never waits on the caller) and yields each
  event in the compact wire form (``wire``), after a first ``replica`` message naming the
  replica and describing its backend. When Serve cancels the call (the caller pressed Stop or
  went away) the run's ``RunControl`` is cancelled, so the backend stops within one step, and
  the call ends only once the backend has wound down, so the replica's slot frees when its GPU
  does. "Finish early" arrives through the caller's ``RunSignals`` actor.
- ``describe()``: the hosted backend's identity, capabilities, availability and models.

Everything a backend reports goes back as events; nothing here raises to Serve for a failed run.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..backend import Backend, ModelListingError
from ..control import RunControl
from ..events import Failed, Finished
from ..plugins import Registry, UnknownBackendError
from ..request import RunRefused, build_request, validate_request
from ..runner import BackendRunner
from .wire import to_wire

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How long one wait for the backend's next event lasts before the loop looks again."""
STOP_SECONDS = 30.0
"""How long a cancelled run may take to wind down before its slot is given back anyway."""


class BackendServer:
    """Hosts one registered backend on a Serve replica and streams its runs' events."""

    def __init__(
        self,
        backend: str = "diffusers",
        backend_options: dict[str, Any] | None = None,
        plugins: Sequence[str] = (),
        warmup: Sequence[str] = (),
        preview_format: str = "array",
        image_format: str = "array",
    ) -> None:
        self.backend = load_backend(backend, backend_options or {}, plugins)
        for model in warmup:
            warm_up(self.backend, model)
        self.preview_format = preview_format
        self.image_format = image_format
        self.replica = _replica_id()
        # One thread per run waits on the backend's events; the event loop never blocks.
        self._waiters = ThreadPoolExecutor(thread_name_prefix="gdp-wire")
        log.info("replica %s hosts backend %r", self.replica, self.backend.id)

    def describe(self) -> dict[str, Any]:
        """The hosted backend as the caller mirrors it (JSON-ready)."""
        backend = self.backend
        try:
            models: list[dict] | None = [m.model_dump(mode="json") for m in backend.list_models()]
            models_error = None
        except ModelListingError as error:
            models, models_error = None, str(error)
        return {
            "id": backend.id,
            "display_name": backend.display_name,
            "location": backend.location,
            "capabilities": backend.capabilities.model_dump(mode="json"),
            "availability": backend.availability().model_dump(mode="json"),
            "models": models,
            "models_error": models_error,
            "replica": self.replica,
            "version": _version(),
        }

    async def generate(
        self, request: dict[str, Any], run_id: str, signals: Any = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Run ``request`` on the hosted backend; yield the replica message, then its events
        in wire form."""
        loop = asyncio.get_running_loop()
        yield {"event": "replica", "replica": self.replica, "description": self.describe()}
        backend = self.backend
        try:
            resolved = validate_request(build_request(backend, request), backend)
        except RunRefused as error:
            yield to_wire(Failed(str(error), error.reason, error.retry_after))
            return
        control = RunControl()
        runner = BackendRunner(
            backend.id, lambda: backend.generate(resolved, control), control
        ).start()
        finish_wait = _wait_for_finish(signals, run_id, control)
        ended = False
        try:
            while not ended:
                item = await loop.run_in_executor(self._waiters, self._next, runner)
                if item is None:  # the backend stopped yielding
                    return
                if item is _NOTHING_YET:
                    continue
                ended = item["event"] in ("finished", "failed")
                yield item
        finally:
            if not ended:
                control.cancel()
            if finish_wait is not None:
                finish_wait.cancel()
                _forget(signals, run_id)
            await loop.run_in_executor(self._waiters, runner.stop, STOP_SECONDS)

    def _next(self, runner: BackendRunner) -> dict[str, Any] | object | None:
        """The backend's next event in wire form (encoded here, off the event loop),
        ``_NOTHING_YET`` after a quiet ``POLL_SECONDS``, ``None`` once it has stopped."""
        event = runner.channel.get(timeout=POLL_SECONDS)
        if event is None:
            return None if runner.channel.closed else _NOTHING_YET
        if isinstance(event, Finished):
            log.info("run finished on replica %s", self.replica)
        return to_wire(event, self.preview_format, self.image_format)


_NOTHING_YET = object()


def load_backend(backend_id: str, options: dict[str, Any], plugins: Sequence[str]) -> Backend:
    """The registered backend ``backend_id``; a new instance built with ``options`` when given.

    Raises ``ValueError`` naming the registered ids or the bad options, so a wrong config fails
    the deployment with a message that says what to fix.
    """
    registry = Registry()
    for module_name in plugins:
        registry.add_plugin(importlib.import_module(module_name), module_name, "(serve config)")
    try:
        registered = registry.get(backend_id)
    except UnknownBackendError as error:
        raise ValueError(str(error)) from None
    if not options:
        return registered
    try:
        return type(registered)(**options)
    except TypeError as error:
        raise ValueError(
            f"backend_options {sorted(options)} do not fit backend '{backend_id}' "
            f"({type(registered).__name__}): {error}. Fix: use its constructor's arguments."
        ) from None


def warm_up(backend: Backend, model: str) -> None:
    """Load ``model`` by one short, small run; raises ``ValueError`` with the backend's
    message when it fails, so the replica (and a deployment of it) fails to start loudly."""
    caps = backend.capabilities_for(model)
    side = -(-caps.min_size // caps.size_multiple) * caps.size_multiple
    fields = {"prompt": "warm-up", "model": model, "steps": caps.steps_range[0], "seed": 0}
    failure = f"Warming up model '{model}' on backend '{backend.id}' failed"
    try:
        request = validate_request(
            build_request(backend, {**fields, "width": side, "height": side}), backend
        )
    except RunRefused as error:
        raise ValueError(f"{failure}: {error}") from None
    for event in backend.generate(request, RunControl()):
        if isinstance(event, Failed):
            raise ValueError(f"{failure}: {event.message}")
    log.info("replica warmed up model %r", model)


def _wait_for_finish(signals: Any, run_id: str, control: RunControl) -> asyncio.Future | None:
    """Wait on the caller's ``RunSignals`` for "finish early"; None without signals."""
    if signals is None:
        return None
    pending = signals.wait.remote(run_id)

    async def wait() -> None:
        try:
            if await pending:
                control.finish_early()
        except Exception:  # the caller went away; its run is cancelled through Serve
            log.debug("finish-early wait for %s ended", run_id, exc_info=True)

    return asyncio.ensure_future(wait())


def _forget(signals: Any, run_id: str) -> None:
    try:
        signals.forget.remote(run_id)
    except Exception:
        log.debug("could not release the finish-early wait of %s", run_id, exc_info=True)


def _replica_id() -> str:
    try:
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # built outside a replica (tests of the class itself)
        return "local"


def _version() -> str | None:
    try:
        return importlib.metadata.version("gradio-diffusion-preview")
    except importlib.metadata.PackageNotFoundError:
        return None
