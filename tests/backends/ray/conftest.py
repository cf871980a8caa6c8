"""One local Ray for every Ray module of a test run (they share the ``ray`` xdist group, so one
worker runs them all, one after another): starting Ray took about a quarter of their time, once
per module. Each module starts Serve on it and removes what it deployed when it ends; Ray itself
ends after the last test that uses it (idle, its processes took about 5% of a core, for the rest
of the worker's run)."""

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


_cluster: dict[str, SimpleNamespace] = {}
"""The running Ray's addresses and step log, while tests that use it follow one another."""


@pytest.fixture(scope="module")
def ray_cluster() -> SimpleNamespace:
    """Ray on loopback with its dashboard (Ray's own ``serve status/deploy/shutdown`` talk to
    it), the test plugins importable by its workers, and the ``StepLog`` actor the toy
    replicas report their steps to: its GCS address, dashboard port and the log. Started for
    the first test that uses it, ended after the last (``pytest_runtest_teardown``)."""
    if "ray" not in _cluster:
        _cluster["ray"] = _start_cluster()
    return _cluster["ray"]


def _start_cluster() -> SimpleNamespace:
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
        return SimpleNamespace(
            gcs=ray.get_runtime_context().gcs_address, dashboard_port=dashboard_port, log=log
        )
    except BaseException:
        ray.shutdown()
        raise


@pytest.hookimpl(trylast=True)  # after the test's module fixtures (Serve) are torn down
def pytest_runtest_teardown(item, nextitem) -> None:
    """Ray ends once the next test's module has no test that uses it, or no test follows (a
    module's tests keep the cluster its fixtures were given, whichever test is next)."""
    if _cluster and (nextitem is None or not _module_uses_ray(nextitem)):
        import ray

        _cluster.clear()
        ray.shutdown()


def _module_uses_ray(item) -> bool:
    return any(
        "ray_cluster" in other.fixturenames
        for other in item.session.items
        if other.path == item.path
    )
