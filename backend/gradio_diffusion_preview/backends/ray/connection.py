"""RayConnection: this process's link to one Serve application (the Ray cluster, the app's
handle, the finish-early actor), made on first use and made again when the application moved.

A process holds one Ray connection. When it already has one (``ray.init`` in the app, or a test's
local instance) that one is used whatever the address; otherwise ``ray.init(address)`` connects,
to ``"auto"`` (the cluster this machine is a node of, or ``RAY_ADDRESS``) or ``"<head>:6379"``.
Ray Client (``ray://``) is refused earlier: Serve's streaming handles do not work through it.

Serve keeps its own link to the Serve controller, per process; after ``serve shutdown`` and a
redeploy (a new controller) that link and every handle made through it are stale, so
``reconnect()`` drops both and the next ``handle()`` finds the new controller by name.
Handles and the actor belong to one Ray session and are made again after a reconnect.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .admission import Admission, Limits

log = logging.getLogger(__name__)


class RayUnreachable(RuntimeError):
    """The cluster or the application cannot be reached; ``str()`` names the cause and fix
    in one sentence for a visitor (the details go to the log). ``cause`` and ``fix`` are its
    two halves, for a message that puts its own words around them (a model listing's)."""

    def __init__(self, cause: str, fix: str | None = None) -> None:
        self.cause, self.fix = cause, fix
        super().__init__(f"{cause}: {fix}" if fix else cause)


LIMITS_SECONDS = 5.0
"""How long the application's limits (replicas running, queue bound) are taken as known."""

_init_lock = threading.Lock()
_signals: dict[str, Any] = {}
"""The finish-early actor of this process, by Ray session (node and job id)."""


def start_command(app: str, backend: str) -> str:
    """The command that starts the application ``app`` hosting ``backend``."""
    return f"python -m gradio_diffusion_preview serve run {backend} --app {app}"


class RayConnection:
    def __init__(self, address: str, app: str, backend: str = "diffusers") -> None:
        self.address, self.app, self.backend = address, app, backend
        self._lock = threading.Lock()
        self._handle: tuple[str, Any] | None = None
        self._limits: tuple[float, Limits | None] | None = None
        self.admission = Admission()

    def _session(self) -> str:
        """Connect if this process is not connected yet; the session (this node, this job)."""
        import ray

        with _init_lock:
            if not ray.is_initialized():
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except Exception:
                    log.warning("cannot connect to Ray at %r", self.address, exc_info=True)
                    raise RayUnreachable(
                        f"Cannot connect to the Ray cluster at '{self.address}'",
                        "start the cluster (`ray start --head`) and the application "
                        f"(`{start_command(self.app, self.backend)}`), or set the endpoint's "
                        "url to the cluster's address.",
                    ) from None
            context = ray.get_runtime_context()
            # A job id alone repeats in a new cluster (each one's first driver is 01000000):
            # an actor of a cluster that is gone must not be taken for this one's.
            return f"{context.get_node_id()}/{context.get_job_id()}"

    def handle(self) -> Any:
        """The application's handle (``DeploymentHandle``); raises ``RayUnreachable``."""
        session = self._session()
        with self._lock:
            if self._handle is not None and self._handle[0] == session:
                return self._handle[1]
        from ray import serve

        try:
            handle = serve.get_app_handle(self.app)
        except Exception:
            # Serve's cached controller may be one that `serve shutdown` removed: find the
            # current one by name and ask again.
            _drop_serve_client()
            try:
                handle = serve.get_app_handle(self.app)
            except Exception:
                log.warning("no Serve application %r", self.app, exc_info=True)
                raise RayUnreachable(
                    f"The Ray Serve application '{self.app}' is not running on the cluster",
                    f"start it with `{start_command(self.app, self.backend)}` (or set the "
                    "endpoint's 'app' option to the name it runs under).",
                ) from None
        with self._lock:
            self._handle = (session, handle)
        return handle

    def signals(self) -> Any:
        """This process's ``RunSignals`` actor, made on first use (no CPU reserved)."""
        session = self._session()
        with _init_lock:
            actor = _signals.get(session)
            if actor is None:
                import ray

                from ...serving.signals import RunSignals

                actor = (
                    ray.remote(RunSignals)
                    .options(num_cpus=0, max_concurrency=10_000, max_restarts=-1)
                    .remote()
                )
                _signals.clear()
                _signals[session] = actor
            return actor

    def limits(self) -> Limits | None:
        """The application's replica slots and queue bound, from the Serve controller (kept
        ``LIMITS_SECONDS``); None when it cannot say."""
        with self._lock:
            if self._limits is not None and time.monotonic() - self._limits[0] < LIMITS_SECONDS:
                return self._limits[1]
        limits = self._ask_limits()
        with self._lock:
            self._limits = (time.monotonic(), limits)
        return limits

    def _ask_limits(self) -> Limits | None:
        import ray
        from ray.serve import context

        from ...serving.settings import DEPLOYMENT_NAME

        try:
            controller = context._get_global_client()._controller
            details = ray.get(controller.get_serve_instance_details.remote(), timeout=5)
            deployments = details["applications"][self.app]["deployments"]
            deployment = deployments.get(DEPLOYMENT_NAME) or next(iter(deployments.values()))
            config = deployment["deployment_config"]
            running = sum(
                1
                for replica in deployment["replicas"]
                if getattr(replica["state"], "value", replica["state"]) == "RUNNING"
            )
            backpressure = config.get("backpressure_config") or {}
            return Limits(
                running * int(config["max_ongoing_requests"]),
                int(config["max_queued_requests"]),
                backpressure.get("retry_after_s"),
            )
        except Exception:  # an older controller, an app being replaced: Serve's bound applies
            log.debug("no limits for Serve application %r", self.app, exc_info=True)
            return None

    def reconnect(self) -> None:
        """The application went away or moved: forget its handle and Serve's link to its
        controller, so the next ``handle()`` finds the application anew."""
        with self._lock:
            self._handle = self._limits = None
        _drop_serve_client()


def _drop_serve_client() -> None:
    """Forget Serve's cached client of the Serve controller (Ray 2.60: ``_disconnect``), so
    the next Serve call looks the controller up by name."""
    from ray.serve import context

    disconnect = getattr(context, "_disconnect", None)
    if disconnect is not None:
        disconnect()
    else:
        context._set_global_client(None)
