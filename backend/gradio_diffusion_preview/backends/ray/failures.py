"""What a failed Ray Serve call means for the run: one ``Failed`` event with the right reason.

- The application's queue is full (``BackPressureError``, ``max_queued_requests``): ``busy``,
  with ``retry_after`` from the deployment's backpressure config, else the typical run's length.
- The replica running the run died (``ActorDiedError``/``ActorUnavailableError``, both
  ``RayActorError``; a lost object or a crashed worker): ``unavailable``, naming the replica.
  Serve stops routing to it at once, so the next run goes to a healthy one.
- The cluster, the application or the deployment cannot be reached: ``unavailable``.
- Anything the replica raised (a bug; backends report failures as events): ``backend_error``.
"""

from __future__ import annotations

from ...events import Failed
from .connection import RayUnreachable

DEFAULT_RETRY_AFTER = 10.0
"""Seconds a busy run is told to wait when neither Serve nor past runs say better."""


def failure_for(
    error: BaseException,
    *,
    backend_id: str,
    app: str,
    replica: str | None,
    typical_run: float | None = None,
) -> Failed:
    """The ``Failed`` event for ``error``, raised while calling the application ``app``."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    where = f"Ray Serve application '{app}'"
    if isinstance(error, RayUnreachable):
        return Failed(str(error), "unavailable")
    if isinstance(error, serve_errors.BackPressureError):
        wait = error.retry_after_s if error.retry_after_s is not None else typical_run
        wait = round(wait if wait is not None else DEFAULT_RETRY_AFTER, 1)
        return Failed(
            f"Every replica of the {where} is busy and its queue is full ({error}). Fix: try "
            f"again in about {wait:g} s; the server's owner can add replicas or raise "
            "max_queued_requests.",
            "busy",
            retry_after=wait,
        )
    if isinstance(
        error,
        ray_errors.RayActorError
        | ray_errors.ObjectLostError
        | ray_errors.WorkerCrashedError
        | serve_errors.ReplicaUnavailableError,
    ):
        which = f"replica '{replica}'" if replica else "replica"
        return Failed(
            f"The {where}'s {which} running this run died mid-run "
            f"({_first_line(error)}). Fix: try again; the next run goes to a healthy "
            "replica while Serve replaces this one.",
            "unavailable",
        )
    if isinstance(error, serve_errors.DeploymentUnavailableError):
        return Failed(
            f"The {where} cannot take runs: {error.message} Fix: check `serve status` on the "
            "cluster and redeploy it.",
            "unavailable",
        )
    if isinstance(error, serve_errors.RayServeException | ray_errors.RaySystemError):
        return Failed(f"The {where} failed: {_first_line(error)}.", "unavailable")
    return Failed(
        f"Backend '{backend_id}' failed while calling the {where}: {type(error).__name__}: "
        f"{_first_line(error)}. This is a bug; report it with the replica's log.",
        "backend_error",
    )


def _first_line(error: BaseException) -> str:
    """The gist of a Ray error: its first line, and the line saying why an actor died."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    why = [line for line in lines[1:] if line.startswith("The actor is dead because")]
    return "; ".join(line.rstrip(".") for line in [lines[0], *why[:1]])
