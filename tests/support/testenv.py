"""Where the tests are and how they reach the machine: the repository root, a free loopback port,
and the demo script imported as a module. Plain functions, so fixtures, helper modules and tests
in any folder share them (``tests/support`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SUPPORT = TESTS / "support"
EXAMPLE_PLUGIN = ROOT / "examples" / "gdp-example-plugin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
