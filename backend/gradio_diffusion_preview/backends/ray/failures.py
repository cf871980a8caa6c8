"""What a failed Ray Serve call means for the run: one ``Failed`` event with the right reason,
its message one plain sentence for the visitor (no Ray internals, process ids or addresses);
Ray's own words go to this module's log.

- The application's queue is full (``BackPressureError``, ``max_queued_requests``): ``busy``,
  with ``retry_after`` from the deployment's backpressure config, else the typical run's length.
- The replica running the run died (``ActorDiedError``/``ActorUnavailableError``, both
  ``RayActorError``; a lost object or a crashed worker): ``unavailable``.
  Serve stops routing to it at once, so the next run goes to a healthy one.
- The cluster, the application or the deployment cannot be reached: ``unavailable``, with the
  command that starts the application.
- Anything the replica raised (a bug; backends report failures as events): ``backend_error``.
"""

from __future__ import annotations

import logging

from ...events import Failed
from .connection import RayUnreachable, start_command

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 10.0
"""Seconds a busy run is told to wait when neither Serve nor past runs say better."""


def busy(app: str, retry_after: float) -> Failed:
    """A run refused because every replica of ``app`` is at work and its queue is full."""
    return Failed(
        f"Every replica of the Ray Serve application '{app}' is busy and its queue is full; "
        f"try again in about {retry_after:g} s.",
        "busy",
        retry_after=retry_after,
    )


def retry_wait(retry_after_s: float | None, typical_run: float | None) -> float:
    """The ``retry_after`` for a busy run: Serve's setting, else a typical run, else 10 s."""
    wait = retry_after_s if retry_after_s is not None else typical_run
    return round(wait if wait is not None else DEFAULT_RETRY_AFTER, 1)


def failure_for(
    error: BaseException,
    *,
    backend_id: str,
    app: str,
    replica: str | None,
    typical_run: float | None = None,
    hosted: str = "diffusers",
) -> Failed:
    """The ``Failed`` event for ``error``, raised while calling the application ``app``."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    if isinstance(error, RayUnreachable):
        return Failed(str(error), "unavailable")
    where = f"the Ray Serve application '{app}'"
    if isinstance(error, serve_errors.BackPressureError):
        log.info("%s refused a run: %s", where, error)
        return busy(app, retry_wait(error.retry_after_s, typical_run))
    log.warning("a run on %s (replica %s) failed", where, replica, exc_info=error)
    if isinstance(
        error,
        ray_errors.RayActorError
        | ray_errors.ObjectLostError
        | ray_errors.WorkerCrashedError
        | serve_errors.ReplicaUnavailableError,
    ):
        return Failed(
            f"The replica of {where} that ran this run stopped mid-run; try again, the next "
            "run goes to a healthy replica.",
            "unavailable",
        )
    if isinstance(error, serve_errors.DeploymentUnavailableError):
        return Failed(
            f"{where[0].upper()}{where[1:]} cannot take runs (it failed to start, or is being "
            f"replaced); fix: redeploy it with `{start_command(app, hosted)}`.",
            "unavailable",
        )
    if isinstance(error, serve_errors.RayServeException | ray_errors.RaySystemError):
        return Failed(f"{where[0].upper()}{where[1:]} failed this run; try again.", "unavailable")
    return Failed(
        f"Backend '{backend_id}' failed while calling {where} ({type(error).__name__}); this "
        "is a bug, report it with the replica's log.",
        "backend_error",
    )
