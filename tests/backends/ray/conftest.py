"""One local Ray for every Ray module of a test run (they share the ``ray`` xdist group, so one
worker runs them all): starting Ray took about a quarter of their time, once per module. Each
module starts Serve on it and removes what it deployed when it ends; Ray itself ends with the
session."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray_toys import NAMESPACE, STEP_LOG, StepLog
from testenv import free_port

TESTS = Path(__file__).resolve().parents[2] / "support"  # ray_toys, for the replicas


def start_ray(**options) -> None:
    """``ray.init``, tried twice: Ray gives a new node a fixed 30 s to register, which a
    machine this loaded (2 cores, many test runs at once) can miss."""
    import ray

    for attempt in (1, 2):
        try:
            ray.init(**options)
            return
        except Exception as error:
            if attempt == 2 or "timed out during startup" not in str(error):
                raise
            ray.shutdown()


@pytest.fixture(scope="session")
def ray_cluster():
    """Ray on loopback with its dashboard (Ray's own ``serve status/deploy/shutdown`` talk to
    it), the test plugins importable by its workers, and the ``StepLog`` actor the toy
    replicas report their steps to. Yields its GCS address, dashboard port and the log."""
    import ray

    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    # Replicas import the test plugin module from here; no usage reports leave the machine.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    dashboard_port = free_port()
    try:
        start_ray(
            num_cpus=2,
            include_dashboard=True,
            dashboard_port=dashboard_port,
            log_to_driver=False,
            namespace=NAMESPACE,
            _node_ip_address="127.0.0.1",
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        log = ray.remote(StepLog).options(name=STEP_LOG, num_cpus=0).remote()
        yield SimpleNamespace(
            gcs=ray.get_runtime_context().gcs_address, dashboard_port=dashboard_port, log=log
        )
    finally:
        ray.shutdown()
