"""Where the tests are and how they reach the machine: the repository root, a free loopback port,
an app launched on loopback, and the demo script imported as a module. Plain functions, so
fixtures, helper modules and tests in any folder share them (``tests/support`` is on pytest's
``pythonpath``)."""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SUPPORT = TESTS / "support"
EXAMPLE_PLUGIN = ROOT / "examples" / "gdp-example-plugin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SELF_CHECK_FAILED = "localhost is not accessible"
"""Gradio's launch asks its own page with a 3-second HEAD and raises this at the first timeout
(gradio/networking.py, ``url_ok``: its timeout handler is outside its retry loop)."""
ANSWERED = (200, 301, 302, 303, 307, 308, 401)
"""What ``url_ok`` takes as serving (401 and the redirects: an app behind a login)."""


def launch_loopback(app, port: int | None = None, seconds: float = 300.0, **launch_kwargs) -> str:
    """Launch a queued Blocks on 127.0.0.1 without blocking; returns its URL.

    On a loaded machine Gradio's own 3-second self-check can time out while its server runs
    fine; the launch then raises after the server started. This waits for the page itself,
    with a timeout a loaded machine meets, instead of failing the test or launching again."""
    try:
        _, url, _ = app.launch(
            server_name="127.0.0.1",
            server_port=port or free_port(),
            prevent_thread_lock=True,
            quiet=True,
            **launch_kwargs,
        )
        return url
    except ValueError as error:
        if SELF_CHECK_FAILED not in str(error):
            raise
    import httpx

    url, deadline = app.local_url, time.monotonic() + seconds
    while True:
        try:
            if httpx.head(url, timeout=30).status_code in ANSWERED:
                return url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            app.close()
            raise AssertionError(f"{url} did not answer within {seconds:.0f} s of its launch")
        time.sleep(0.5)


def load_demo_module():
    """Import demo/app.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("demo_app", ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_tmp(tmp_path_factory) -> Path:
    """A temporary folder that every test worker of this run shares (this session's own when
    pytest runs without workers): for things built once per run, atomically."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
