"""Shared fixtures: offline settings, Gradio apps served on loopback, and Debian's Chromium."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _torch_threads_as_the_backend_chooses() -> None:
    """torch's threads for the whole suite, set before anything imports torch: the diffusers
    backend's automatic choice (one core left free), so a busy CI machine slows the suite by
    its share instead of stalling every torch operation. Through ``OMP_NUM_THREADS`` it also
    reaches the apps and scripts the tests start; a value already set is kept."""
    from gradio_diffusion_preview.backends.diffusers.cpu_threads import automatic_threads

    os.environ.setdefault("OMP_NUM_THREADS", str(automatic_threads()))


_torch_threads_as_the_backend_chooses()

import importlib.metadata  # noqa: E402
import shutil  # noqa: E402
import site  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from testenv import EXAMPLE_PLUGIN, ROOT, free_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


LAUNCH_ATTEMPTS = 3


def _serving() -> Iterator[Callable]:
    launched = []

    def _serve(blocks) -> str:
        blocks.queue()
        for attempt in range(LAUNCH_ATTEMPTS):
            try:
                _, url, _ = blocks.launch(
                    server_name="127.0.0.1",
                    server_port=free_port(),
                    prevent_thread_lock=True,
                    quiet=True,
                    show_error=True,
                )
                break
            except ValueError as error:
                # Gradio's launch checks its own URL with a 3 s HEAD request and gives up with
                # "localhost is not accessible" when a loaded machine answers late: try again.
                blocks.close()
                if "localhost is not accessible" not in str(error):
                    raise
                if attempt == LAUNCH_ATTEMPTS - 1:
                    raise
        launched.append(blocks)
        return url

    yield _serve
    for blocks in launched:
        blocks.close()


@pytest.fixture
def serve() -> Iterator[Callable]:
    """``serve(blocks) -> url``: launch a Blocks on loopback; closed after the test."""
    yield from _serving()


@pytest.fixture(scope="module")
def serve_module() -> Iterator[Callable]:
    """Like ``serve``, for module fixtures: apps that several tests share (one launch each)."""
    yield from _serving()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (Playwright's own browser download fails here)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def output_dir(request) -> Path:
    """A folder for this test's artefacts (screenshots) under test-output/."""
    path = ROOT / "test-output" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def example_plugin() -> str:
    """The example plugin installed (editable) into this environment like any third-party
    plugin. `make setup` installs it; this covers a bare `pytest` on a fresh clone."""
    try:
        dist = importlib.metadata.distribution("gdp-example-plugin")
        installed_here = EXAMPLE_PLUGIN.as_uri() in (dist.read_text("direct_url.json") or "")
    except importlib.metadata.PackageNotFoundError:
        installed_here = False
    if not installed_here:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-e",
                str(EXAMPLE_PLUGIN),
            ],
            check=True,
        )
        site.addsitedir(sysconfig.get_paths()["purelib"])  # reads the new .pth file
        importlib.invalidate_caches()
    return "gdp-example-plugin"
