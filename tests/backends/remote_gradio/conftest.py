"""Fixtures of the remote Gradio backend's tests: a remote app in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from testenv import SUPPORT, free_port


@pytest.fixture
def subprocess_remote():
    """``start(port) -> (url, process)``: the seeded counting app in a process of its own."""
    started = []

    def start(port: int | None = None, step_seconds: float = 0.05, models: str = ""):
        port = port or free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                str(SUPPORT / "remote_gradio_apps.py"),
                f"--port={port}",
                f"--step-seconds={step_seconds}",
                f"--models={models}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                import httpx

                if httpx.get(url + "/config", timeout=1).status_code == 200:
                    return url, process
            except httpx.TransportError:
                time.sleep(0.2)
            if process.poll() is not None:
                break
        raise RuntimeError(f"the remote app on port {port} did not start")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


SPACE_APP_VERSIONS = os.environ.get("REMOTE_GRADIO_VERSIONS", "gradio6,gradio5").split(",")
"""The Gradio versions serving the Space-shaped apps: 6 and 5 in ``make test``; 4.44 in the
slower ``make test-gradio4`` (REMOTE_GRADIO_VERSIONS=gradio4)."""


@pytest.fixture(scope="session", params=SPACE_APP_VERSIONS)
def space_apps(request, tmp_path_factory):
    """The Space-shaped apps (tests/support/remote_space_apps.py) served by Gradio 6 and by
    Gradio 5, one server per version and test worker. Gradio 5's environment is made by
    ``make test``; run by hand without it, its tests skip and say how to make it."""
    from remote_space_server import MISSING, PYTHONS, start_space_apps

    version = request.param
    if not PYTHONS[version].exists():
        pytest.skip(MISSING[version])
    server = start_space_apps(version, tmp_path_factory.mktemp(f"space-apps-{version}"))
    yield server
    server.stop()
