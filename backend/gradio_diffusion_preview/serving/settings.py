"""ServeSettings: how a backend is served on Ray Serve, and the Serve config file it makes.

One validated record holds what Serve needs (replicas or autoscaling, per-replica concurrency,
the queue bound, GPUs and CPUs per replica, the ``Retry-After`` for a full queue) and what the
replicas need (which registered backend to host, its constructor options, extra plugin modules,
the wire formats). ``config()`` turns it into a Serve config file (``serve run`` / ``serve
deploy`` / a KubeRay ``RayService``'s ``serveConfigV2``), with the Serve settings in the standard
``deployments`` section so they can be edited and redeployed without touching the arguments.
Nothing here imports Ray.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_APP = "diffusion-preview"
"""The Serve application name the ``ray`` backend looks for when not told otherwise."""
DEPLOYMENT_NAME = "BackendServer"
"""The deployment's name inside the application (the ``deployments[].name`` of the config)."""
IMPORT_PATH = "gradio_diffusion_preview.serving.app:build_app"
"""The application builder a Serve config file points at."""

PreviewFormat = Literal["array", "jpeg"]
ImageFormat = Literal["array", "png"]


class Autoscaling(BaseModel):
    """Serve's autoscaling: replicas are added while each has more than
    ``target_ongoing_requests`` runs in flight (running or queued for it), down to
    ``min_replicas`` (0 scales to zero when idle) and up to ``max_replicas``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(4, ge=1)
    target_ongoing_requests: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}"
            )
        return self


class HostedBackend(BaseModel):
    """What each replica hosts: the application builder's arguments (``args`` in a config)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str = Field("diffusers", description="The registered backend id to host.")
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the backend's constructor on each replica, e.g. "
        "diffusers: device, dtype, models, cache_size.",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="Extra plugin modules to register on the replicas (import paths), beside "
        "the installed plugins.",
    )
    warmup: list[str] = Field(
        default_factory=list,
        description="Models each replica loads, by one short run, before it takes runs, so no "
        "run waits for a new replica to load its model.",
    )
    preview_format: PreviewFormat = Field(
        "array", description="How previews cross to the caller: raw uint8 arrays, or JPEG."
    )
    image_format: ImageFormat = Field(
        "array", description="How final images cross to the caller: raw uint8 arrays, or PNG."
    )


class ServeSettings(HostedBackend):
    """A backend served on Ray Serve: the hosted backend plus Serve's own settings."""

    app: str = Field(DEFAULT_APP, min_length=1, description="The Serve application name.")
    num_replicas: int | None = Field(
        1, ge=1, description="A fixed number of replicas (None with autoscaling)."
    )
    autoscaling: Autoscaling | None = None
    max_ongoing_requests: int = Field(
        1, ge=1, description="Runs one replica works on at once (one per GPU is usual)."
    )
    max_queued_requests: int = Field(
        -1,
        ge=-1,
        description="Runs that may wait for a replica, per caller; beyond it a run fails as "
        "busy. -1: no bound.",
    )
    num_gpus: float = Field(1.0, ge=0, description="GPUs each replica reserves.")
    num_cpus: float = Field(1.0, ge=0, description="CPUs each replica reserves.")
    retry_after: float | None = Field(
        None, ge=0, description="Seconds a run refused by a full queue is told to wait."
    )

    @model_validator(mode="before")
    @classmethod
    def _autoscaling_replaces_replicas(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("autoscaling") is not None:
            if data.get("num_replicas") not in (None, "auto"):
                raise ValueError(
                    "give either num_replicas or autoscaling (min, max, target), not both"
                )
            data = {**data, "num_replicas": None}
        return data

    @model_validator(mode="after")
    def _some_replicas(self) -> ServeSettings:
        if self.num_replicas is None and self.autoscaling is None:
            raise ValueError("give num_replicas or autoscaling")
        return self

    def hosted(self) -> HostedBackend:
        """The application builder's arguments."""
        return HostedBackend(**self.model_dump(include=set(HostedBackend.model_fields)))

    def deployment_options(self) -> dict[str, Any]:
        """Serve's deployment options (``Deployment.options(**...)`` and the config's
        ``deployments`` entry, less its name)."""
        options: dict[str, Any] = {}
        if self.autoscaling is not None:
            options["autoscaling_config"] = self.autoscaling.model_dump()
        else:
            options["num_replicas"] = self.num_replicas
        options["max_ongoing_requests"] = self.max_ongoing_requests
        options["max_queued_requests"] = self.max_queued_requests
        options["ray_actor_options"] = {"num_gpus": self.num_gpus, "num_cpus": self.num_cpus}
        if self.retry_after is not None:
            options["backpressure_config"] = {"retry_after_s": self.retry_after}
        return options

    def config(self) -> dict[str, Any]:
        """A Serve config file (``ServeDeploySchema``) that runs this application alone.

        Proxies are disabled: the ``ray`` backend calls the application through a deployment
        handle, never over HTTP. Merge the application into an existing config to run it
        beside others (and keep their ``proxy_location``).
        """
        hosted = self.hosted().model_dump()
        return {
            "proxy_location": "Disabled",
            "applications": [
                {
                    "name": self.app,
                    "route_prefix": None,
                    "import_path": IMPORT_PATH,
                    "args": hosted,
                    "deployments": [{"name": DEPLOYMENT_NAME, **self.deployment_options()}],
                }
            ],
        }

    def config_yaml(self) -> str:
        """``config()`` as YAML, with a header saying how to run it."""
        import yaml  # a dependency of Ray

        reach = "DIFFUSION_PREVIEW_RAY_URL=auto"
        if self.app != DEFAULT_APP:
            reach = f'an endpoint of kind "ray" with options.app = "{self.app}"'
        header = (
            f"# Ray Serve config: backend '{self.backend}' as the application '{self.app}'.\n"
            "# Run:     serve run this.yaml     (on a Ray cluster's node, or with RAY_ADDRESS)\n"
            "# Deploy:  serve deploy this.yaml  (to a running cluster through its dashboard;\n"
            "#          RAY_AUTH_MODE=token where the cluster uses token authentication)\n"
            "# KubeRay: the 'applications' list is a RayService's serveConfigV2.\n"
            "# The Gradio app reaches it through the 'ray' backend:\n"
            f"# {reach} (docs/scaling.md).\n"
        )
        return header + yaml.safe_dump(self.config(), sort_keys=False, default_flow_style=False)
