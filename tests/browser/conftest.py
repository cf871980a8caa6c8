"""The Chromium tests: each module here is one pytest-xdist group, so the servers its module
fixtures start are started once, on one worker, and its pages load one at a time there; the
demo is served once per worker for every module that drives it."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.path.parent == HERE and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(f"chromium-{item.path.stem}"))


@pytest.fixture(scope="session")
def demo_url(serve_session) -> str:
    """The demo (demo/app.py) on loopback, its default model loaded by a one-step run first."""
    from browser_helpers import warm_demo

    return serve_session(warm_demo())
