"""Shared fixtures: offline settings, Gradio apps served on loopback, and Debian's Chromium."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _torch_threads_as_the_backend_chooses() -> None:
    """torch's threads for the whole suite, set before anything imports torch: the diffusers
    backend's automatic choice (one core left free), so a busy CI machine slows the suite by
    its share instead of stalling every torch operation. Through ``OMP_NUM_THREADS`` it also
    reaches the apps and scripts the tests start; a value already set is kept. Under
    pytest-xdist (a worker per core and two more) each worker takes at most its share of the
    cores."""
    from gradio_diffusion_preview.backends.diffusers.cpu_threads import automatic_threads

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(min(automatic_threads(), share)))


_torch_threads_as_the_backend_chooses()

from gradio_stubs import start_processes_without_stubs  # noqa: E402
from offline_tls import share_tls_contexts  # noqa: E402

share_tls_contexts()
start_processes_without_stubs()  # Gradio's .pyi stub writer: half of each `import gradio`


def _ctrl_c_reaches_the_commands_tests_start() -> None:
    """SIGINT at its default in the test processes, so the commands the tests start and stop
    with Ctrl-C (``serve run``) get it as from a terminal. A shell starts a background job
    (``make test &`` in a script) with SIGINT ignored, which every process started from it
    inherits: there, ``test_ctrl_c_removes_what_a_blocking_serve_run_deployed`` waited 120 s
    for a command that could not see its Ctrl-C, then failed."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_ctrl_c_reaches_the_commands_tests_start()

import fcntl  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import shutil  # noqa: E402
import site  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from testenv import EXAMPLE_PLUGIN, ROOT, free_port, launch_loopback, shared_tmp  # noqa: E402

# support/: see each docstring
pytest_plugins = ["xdist_groups", "work_order", "frozen_heap", "idle_queues"]

CHROMIUM = (
    shutil.which("chromium-headless-shell") or shutil.which("chromium") or "/usr/bin/chromium"
)
"""The Chromium the tests drive: Debian's chromium-headless-shell (`make test` installs it), the
same Blink as its chromium without the browser's window machinery, which took about a fifth
less CPU for the same Chromium tests here; Debian's chromium where the shell is missing."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (this hook runs in its workers, whose collection order is the run's),
    the modules marked paced (their tests mostly wait on timed steps: a fake A1111's or
    Gradio app's queue and steps, a hung run's timeout) form one group, which one worker runs
    while the others keep the cores busy (``work_order`` starts it first). Handed out test by
    test, they ran on every worker at once: a quiet run's two cores were 45-60% busy for two
    minutes (about a quarter of its time), and a module's servers started once per worker.

    Where torch is not installed (`make test`'s Python 3.10 and 3.13 tiers, whose selection
    is the parts of the suite that need no torch), the tests marked torch are skipped, saying
    why, instead of failing on the diffusers backend's "needs torch" error."""
    if importlib.util.find_spec("torch") is None:
        skip = pytest.mark.skip(reason="needs torch, which this environment does not have")
        for item in items:
            if item.get_closest_marker("torch"):
                item.add_marker(skip)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: its order is the run's
        for item in items:
            if item.get_closest_marker("paced") and not item.get_closest_marker("xdist_group"):
                item.add_marker(pytest.mark.xdist_group("paced"))


LAUNCH_ATTEMPTS = 3
_test_ports: list[int] = []
"""The ports this worker's per-test servers launch on, reused from test to test (one for each
per-test server open at once): a page loaded again from the same address reuses Chromium's
disk cache of Gradio's scripts (about 0.5 s a load on this machine, half a new address's)."""
_open_ports: set[int] = set()
"""The ports of this worker's servers that are open now."""


def _port(reuse: bool) -> int:
    """A port for a server: a per-test server's reused one when one is not open now."""
    if reuse:
        for port in _test_ports:
            if port not in _open_ports:
                return port
    port = free_port()
    if reuse:
        _test_ports.append(port)
    return port


def _serving(reuse_port: bool = False) -> Iterator[Callable]:
    launched = []

    def _serve(blocks) -> str:
        blocks.queue()
        for attempt in range(LAUNCH_ATTEMPTS):
            port = _port(reuse_port)
            try:
                url = launch_loopback(blocks, port, show_error=True)
                break
            except (ValueError, OSError) as error:
                # another process (a test worker, a client's connection) may take the port
                # before this launch binds it: try again, on a new port.
                blocks.close()
                if port in _test_ports:
                    _test_ports.remove(port)
                if "empty port" not in str(error) or attempt == LAUNCH_ATTEMPTS - 1:
                    raise
        launched.append((blocks, port))
        _open_ports.add(port)
        return url

    yield _serve
    for blocks, port in launched:
        blocks.close()
        _open_ports.discard(port)


@pytest.fixture
def serve() -> Iterator[Callable]:
    """``serve(blocks) -> url``: launch a Blocks on loopback; closed after the test. The next
    test's servers reuse its ports."""
    yield from _serving(reuse_port=True)


@pytest.fixture(scope="module")
def serve_module() -> Iterator[Callable]:
    """Like ``serve``, for module fixtures: apps that several tests share (one launch each)."""
    yield from _serving()


@pytest.fixture(scope="session")
def serve_session() -> Iterator[Callable]:
    """Like ``serve``, for session fixtures: an app that tests of several modules share."""
    yield from _serving()


_chromium: dict = {}
"""This worker's Playwright, Chromium and page context while tests that use them follow one
another."""
CHROMIUM_FIXTURES = ("browser", "browser_pages")


def _playwright():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Chromium is missing: `make test` installs Debian's chromium-headless-shell package."
        )
    if "playwright" not in _chromium:
        _chromium["playwright"] = sync_playwright().start()
    return _chromium["playwright"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (Playwright's own browser download fails here).
    One for the browser tests that a test worker runs one after another: launched for the
    first, closed after the last (``pytest_runtest_teardown``), as Playwright's sync API keeps
    an asyncio loop running in this thread while it is started, and a test worker moves on to
    modules whose tests call ``asyncio.run``. A Chromium that went away is launched again."""
    if "browser" not in _chromium or not _chromium["browser"].is_connected():
        _chromium.pop("browser", None)
        _chromium["browser"] = _playwright().chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
    return _chromium["browser"]


@pytest.fixture
def browser_pages(tmp_path_factory):
    """The browser context ``open_page`` opens its pages in: Chromium with a profile folder,
    kept like ``browser`` while tests that use it follow one another. Its disk cache is the
    point: a page loaded again from the same server reuses the cached scripts and V8's compiled
    code (about 0.9 s of CPU a load instead of 1.9 s on this machine). Each test's first page
    at an address starts with that address's storage empty (``open_app``'s ``test``)."""
    if "pages" not in _chromium:
        profile = tmp_path_factory.mktemp("chromium-profile")
        _chromium["pages"] = _playwright().chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
    return _chromium["pages"]


def _close_chromium() -> None:
    context = _chromium.pop("pages", None)
    browser, playwright = _chromium.pop("browser", None), _chromium.pop("playwright", None)
    try:
        if context is not None:
            context.close()
    finally:
        try:
            if browser is not None and browser.is_connected():
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


@pytest.hookimpl(trylast=True)  # after the test's own fixtures (its pages) are torn down
def pytest_runtest_teardown(item, nextitem) -> None:
    """Chromium is closed once the next test does not use it, or none follows."""
    if _chromium and (nextitem is None or not set(CHROMIUM_FIXTURES) & set(nextitem.fixturenames)):
        _close_chromium()


@pytest.fixture
def open_page(browser_pages, request) -> Iterator[Callable]:
    """``open_page(url, dark=False, width=1000, height=900) -> page``: the app at ``url`` in a
    new Chromium page, its component mounted, ``page.errors`` collecting its script errors.
    Every page it opened is closed after the test, whether the test passed or failed."""
    from browser_helpers import open_app

    pages = []

    def _open(url: str, **options):
        page = open_app(browser_pages, url, test=request.node.nodeid, **options)
        pages.append(page)
        return page

    yield _open
    for page in pages:
        if not page.is_closed():
            page.close()


@pytest.fixture
def output_dir(request) -> Path:
    """A folder for this test's artefacts (screenshots) under test-output/."""
    path = ROOT / "test-output" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """The tiny random-weight pipelines (``backends/diffusers/tiny.py``), SD 1.x and SDXL by
    kind: built from configs once for the run, saved, and loaded back like any downloaded model.
    Test workers share them (a build is atomic: the first finished wins, the rest reuse it)."""
    from gradio_diffusion_preview.backends.diffusers.tiny import KINDS, build_tiny_pipeline

    base = shared_tmp(tmp_path_factory)
    return {kind: str(build_tiny_pipeline(kind, base / f"tiny-{kind}")) for kind in KINDS}


@pytest.fixture(scope="session")
def package_wheel(tmp_path_factory) -> Path:
    """The package's wheel for the tests that install it (``space_apps.package_wheel``):
    release-check's, or one built once for the run."""
    from space_apps import package_wheel as wheel_for_the_run

    return wheel_for_the_run(shared_tmp(tmp_path_factory))


@pytest.fixture(scope="session")
def tiny_sd15(tiny_models) -> str:
    """The tiny SD 1.x pipeline's folder (see ``tiny_models``)."""
    return tiny_models["sd15"]


def _example_plugin_installed_here() -> bool:
    try:
        dist = importlib.metadata.distribution("gdp-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return EXAMPLE_PLUGIN.as_uri() in (dist.read_text("direct_url.json") or "")


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory) -> str:
    """The example plugin installed (editable) into this environment like any third-party
    plugin. `make setup` installs it; this covers a bare `pytest` on a fresh clone. Test workers
    take turns (a lock file), so one installs it and the others find it installed."""
    with (shared_tmp(tmp_path_factory) / "example-plugin.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        importlib.invalidate_caches()
        if not _example_plugin_installed_here():
            _install_example_plugin()
    # its .pth file, read once at start-up: another worker may have installed it since
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()
    return "gdp-example-plugin"


def _install_example_plugin() -> None:
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
