"""Space folders for tests: ``release/space.py`` (what ``make space`` runs), fresh virtual
environments holding the package's wheel, and a Space's app started as Hugging Face starts it
(``python app.py`` in the Space's folder, from a given Python) until it serves, then stopped
with its whole process group. Shared by the tests of the demo folder, the folder ``make space``
assembles and the Inference-only Space.

``NO_TORCH`` runs the app in a process where ``import torch`` fails (as where torch is not
installed), so an app that needs torch fails its test even where the environment has it."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from testenv import ROOT, free_port

PACKAGE = "gradio_diffusion_preview"

NO_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; runpy.run_path('app.py', run_name='__main__')"
)


@contextmanager
def served_space(
    folder: Path,
    python: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    log: Path,
    without_torch: bool = False,
    isolated: bool = False,
    seconds: float = 240,
) -> Iterator[str]:
    """The app of ``folder`` served by ``python`` on a free loopback port, with ``env`` on top
    of this environment (``isolated``: less PYTHONPATH, so that the package comes from
    ``python``'s own environment); yields its address. Its output goes to ``log``, shown when
    it exits or does not serve."""
    environ = {k: v for k, v in os.environ.items() if not (isolated and k == "PYTHONPATH")}
    environ.update(GRADIO_ANALYTICS_ENABLED="False")
    environ.update(env or {})
    command = [str(python), "-c", NO_TORCH] if without_torch else [str(python), "app.py"]
    for launch in range(2):
        port = free_port()
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                cwd=folder,
                env={**environ, "GRADIO_SERVER_PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            if _serves(url, process, log, seconds):
                yield url
                return
            if launch or SELF_CHECK not in log.read_text():
                raise AssertionError(log.read_text()[-3000:])
        finally:
            _stop(process)


# Gradio's launch asks its own page once with a 3-second timeout and gives up at the first
# timeout (gradio/networking.py, url_ok), which a loaded machine can exceed: the app then
# exits with this message instead of serving. Such a launch is tried once more.
SELF_CHECK = "When localhost is not accessible"


def _serves(url: str, process: subprocess.Popen, log: Path, seconds: float) -> bool:
    """True once the app at ``url`` serves; False when its process exited first."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    return False


def _stop(process: subprocess.Popen) -> None:
    """Stops the app's whole process group (nothing to do when it has already exited)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def release_module(name: str):
    """``release/<name>.py`` as a module (the release scripts are not part of the package)."""
    path = ROOT / "release" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"release_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def space_module():
    return release_module("space")


def package_wheel(shared: Path) -> Path:
    """The package's wheel for the tests that install it (the Space folders): ``make
    release-check``'s when its stamp says it was built from these very sources (``make test``
    runs it first: built from a clean copy, installed and rendered), else one built in
    ``shared`` as ``make space`` builds it, once for the run: the first test worker that asks
    builds it (a lock file), the others take it."""
    stamped = release_module("check").stamped_wheel()
    if stamped is not None:
        return stamped
    folder = shared / "package-wheel"
    with (shared / "package-wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = sorted(folder.glob("*.whl"))
        if built:
            return built[0]
        staging = Path(tempfile.mkdtemp(prefix=".package-wheel-", dir=shared))
        wheel = space_module().build_wheel(staging)
        os.replace(staging, folder)
        return folder / wheel.name


def run(command: list[str], **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def fresh_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    return path / "bin" / "python"


def pip(python: Path, *args: str, **kwargs) -> str:
    return run([sys.executable, "-m", "pip", "--python", str(python), *args], **kwargs)


def borrow_site_packages(python: Path, links: Path) -> None:
    """Give the environment of ``python`` the development environment's third-party packages
    (links), leaving out editable installs: its only ``gradio_diffusion_preview`` is the wheel's."""
    site = Path(sysconfig.get_paths()["purelib"])
    editable = set()
    for dist_info in site.glob("*.dist-info"):
        direct_url = dist_info / "direct_url.json"
        if direct_url.is_file() and json.loads(direct_url.read_text()).get("dir_info", {}).get(
            "editable"
        ):
            editable.add(dist_info.name)
    links.mkdir()
    for entry in site.iterdir():
        name = entry.name
        if name in editable or name.endswith(".pth") or name.startswith("__editable__"):
            continue
        if name == PACKAGE or name.split("-")[0] == PACKAGE:
            continue
        (links / name).symlink_to(entry, target_is_directory=entry.is_dir())
    venv_site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    )
    (Path(venv_site.strip()) / "zz_borrowed.pth").write_text(f"{links}\n")
