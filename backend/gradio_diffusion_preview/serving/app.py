"""Building and running the Serve application: from Python, from a Serve config file, from the CLI.

- ``application(settings)``: the bound application, with Serve's settings applied, for
  ``serve.run``.
- ``run(settings)``: connect to (or start) Ray and run it under ``settings.app``; returns the
  handle.
- ``build_app(args)``: the application builder a Serve config file names in its
  ``import_path``; ``args`` are the hosted backend's (``HostedBackend``), and Serve applies the
  config's ``deployments`` section (replicas, autoscaling, resources) on top.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from .ctrl_c import wait_for_ctrl_c
from .deployment import BackendServer
from .settings import DEPLOYMENT_NAME, HostedBackend, ServeSettings


def _bind(hosted: HostedBackend, **options: Any) -> Application:
    deployment = serve.deployment(BackendServer, name=DEPLOYMENT_NAME)
    if options:
        deployment = deployment.options(**options)
    return deployment.bind(
        hosted.backend,
        hosted.backend_options,
        hosted.plugins,
        hosted.warmup,
        hosted.preview_format,
        hosted.image_format,
    )


def application(settings: ServeSettings) -> Application:
    """The Serve application that hosts ``settings.backend`` with Serve's settings applied."""
    return _bind(settings.hosted(), **settings.deployment_options())


def build_app(args: dict[str, Any]) -> Application:
    """The application builder for Serve config files (``import_path``); raises ``ValueError``
    naming the bad argument."""
    try:
        hosted = HostedBackend.model_validate(args or {})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "args"
        raise ValueError(
            f"Bad argument '{field}' for {__name__}:build_app: {first['msg']}. Fix: the args "
            f"are {', '.join(HostedBackend.model_fields)} (see docs/scaling.md)."
        ) from None
    return _bind(hosted)


def connect(address: str | None = None) -> str:
    """Connect this process to Ray unless it is already; say truthfully where it runs: a new
    local Ray this process started (it stops with the process), or the cluster it joined
    (``address``, ``RAY_ADDRESS``, or one already running on this machine)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address)
    gcs = ray.get_runtime_context().gcs_address
    node = getattr(ray._private.worker, "_global_node", None)
    if node is not None and getattr(node, "head", False):
        return f"a new local Ray ({gcs}) that stops when this process ends"
    return f"the Ray cluster at {gcs}, which this process joined"


def run(
    settings: ServeSettings, *, address: str | None = None, blocking: bool = False
) -> DeploymentHandle:
    """Run the application on the Ray cluster at ``address`` (``None``: the one this process
    is connected to, else ``RAY_ADDRESS``, else one running on this machine, else a new local
    one) and return its handle. With ``blocking`` it then waits for Ctrl-C; Ctrl-C, there or
    while it deploys, removes the application before ``KeyboardInterrupt`` goes on."""
    connect(address)
    serve.start(proxy_location="Disabled")  # no HTTP: callers use handles (a no-op if running)
    try:
        handle = serve.run(
            application(settings), name=settings.app, route_prefix=None, blocking=False
        )
        if blocking:
            wait_for_ctrl_c()
    except KeyboardInterrupt:
        serve.delete(settings.app)
        raise
    return handle
