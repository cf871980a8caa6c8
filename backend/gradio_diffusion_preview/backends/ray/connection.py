"""RayConnection: this process's link to one Serve application (the Ray cluster, the app's
handle, the finish-early actor), made on first use and kept.

A process holds one Ray connection. When it already has one (``ray.init`` in the app, or a test's
local instance) that one is used whatever the address; otherwise ``ray.init(address)`` connects,
to ``"auto"`` (the cluster this machine is a node of, or ``RAY_ADDRESS``) or ``"<head>:6379"``.
Ray Client (``ray://``) is refused earlier: Serve's streaming handles do not work through it.
Handles and the actor belong to one Ray session and are made again after a reconnect.
"""

from __future__ import annotations

import threading
from typing import Any


class RayUnreachable(RuntimeError):
    """The cluster or the application cannot be reached; ``str()`` names the cause and fix."""


_init_lock = threading.Lock()
_signals: dict[str, Any] = {}
"""The finish-early actor of this process, by Ray session (job id)."""


class RayConnection:
    def __init__(self, address: str, app: str) -> None:
        self.address, self.app = address, app
        self._lock = threading.Lock()
        self._handle: tuple[str, Any] | None = None

    def _session(self) -> str:
        """Connect if this process is not connected yet; the session's job id."""
        import ray

        with _init_lock:
            if not ray.is_initialized():
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except Exception as error:
                    raise RayUnreachable(
                        f"Cannot connect to the Ray cluster at '{self.address}' "
                        f"({type(error).__name__}: {error}). Fix: start the cluster (`ray start "
                        "--head`) and the app (`python -m gradio_diffusion_preview serve run`), "
                        "or set the endpoint's url to the cluster's address."
                    ) from None
            return ray.get_runtime_context().get_job_id()

    def handle(self) -> Any:
        """The application's handle (``DeploymentHandle``); raises ``RayUnreachable``."""
        session = self._session()
        with self._lock:
            if self._handle is not None and self._handle[0] == session:
                return self._handle[1]
        from ray import serve

        try:
            handle = serve.get_app_handle(self.app)
        except Exception as error:
            raise RayUnreachable(
                f"The Ray cluster has no Serve application '{self.app}' ({type(error).__name__}: "
                f"{error}). Fix: start it with "
                f"`python -m gradio_diffusion_preview serve run --app {self.app} BACKEND`, or "
                "set the endpoint's 'app' option to the application's name."
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

    def forget_handle(self) -> None:
        with self._lock:
            self._handle = None
