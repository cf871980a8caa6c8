"""The wheel we ship: built from a clean copy of the repository the way the Makefile builds it,
installed into a fresh virtual environment, and mounted by Chromium from that environment.

The build is ``make release-check``'s (``release/check.py``: ``gradio cc build`` in a clean copy),
which ``make test`` runs before pytest: its wheel in ``dist/release/`` is checked here when its
stamp says it was built from the sources as they are now; otherwise this module builds one the
same way (so the wheel is built once per ``make test``, and a test run alone still builds).
release-check also installs that wheel and its sdist into fresh environments and renders them
in Chromium, and records it in the stamp: the install-and-mount test then says so and skips
rather than do it a third time (about 15 s of two busy cores in the suite).

The development venv has this package installed editable, so the fresh environment borrows the
development venv's third-party packages (gradio, numpy, ...) through a folder of links that
leaves out every editable install: the only ``gradio_diffusion_preview`` it can import is the
wheel's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from space_apps import release_module
from testenv import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PACKAGE = "gradio_diffusion_preview"
SERVE_APP = """
import sys
import gradio as gr
import PIL.Image
import gradio_diffusion_preview as gdp

print("IMPORTED", gdp.__file__, flush=True)
with gr.Blocks() as demo:
    gdp.DiffusionPreview(value=PIL.Image.new("RGB", (64, 48), (200, 120, 40)), label="Packaged")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def clean_wheel(tmp_path_factory) -> tuple[Path, bool]:
    """The wheel built from a clean copy of this checkout: ``make release-check``'s when it was
    built from these very sources, else one built here the same way; and whether release-check
    then installed it into a fresh environment and rendered it in Chromium."""
    check = release_module("check")
    stamped = check.stamped_wheel()
    if stamped is not None:
        return stamped, check.stamped_wheel(checked=True) is not None
    try:
        _, wheel = check.build(tmp_path_factory.mktemp("dist"))
    except SystemExit as failed:
        pytest.fail(str(failed))
    return wheel, False


def borrowed_site_packages(dest: Path) -> Path:
    """Links to the development venv's site-packages, minus editable installs and .pth files."""
    site = Path(sysconfig.get_paths()["purelib"])
    editable_names: set[str] = set()
    for dist_info in site.glob("*.dist-info"):
        direct_url = dist_info / "direct_url.json"
        if direct_url.is_file():
            info = json.loads(direct_url.read_text())
            if info.get("dir_info", {}).get("editable"):
                editable_names.add(dist_info.name)
    dest.mkdir()
    for entry in site.iterdir():
        name = entry.name
        if name in editable_names or name.endswith(".pth") or name.startswith("__editable__"):
            continue
        if name.split("-")[0] == PACKAGE or name == PACKAGE:
            continue
        (dest / name).symlink_to(entry, target_is_directory=entry.is_dir())
    return dest


def fresh_venv(path: Path, wheel: Path, tmp_path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        timeout=120,
    )
    venv_site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    borrowed = borrowed_site_packages(tmp_path / "borrowed-site-packages")
    (venv_site / "zz_borrowed.pth").write_text(f"{borrowed}\n")
    return python


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the app did not answer at {url}:\n{log.read_text()[-4000:]}")


def test_the_clean_wheel_carries_what_an_install_needs(clean_wheel):
    wheel, _ = clean_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    required = [f"{PACKAGE}/{name}" for name in release_module("check").IN_WHEEL]
    assert len(required) > 15
    missing = [name for name in required if name not in names]
    assert not missing, f"{wheel.name} lacks {missing}"


def test_wheel_built_from_clean_checkout_installs_and_mounts(
    clean_wheel, tmp_path, browser, output_dir
):
    wheel, checked = clean_wheel
    if checked:
        pytest.skip(
            "make release-check installed this very wheel (built from these sources) into a "
            "fresh environment with its dependencies and rendered it in Chromium "
            "(dist/release/clean-build.json)"
        )

    venv = tmp_path / "venv"
    python = fresh_venv(venv, wheel, tmp_path)
    # the fresh environment's own imports: a PYTHONPATH (a worktree's run) would shadow the wheel
    isolated = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    located = run([str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], env=isolated)
    assert Path(located.stdout.strip()).resolve().is_relative_to(venv.resolve()), located.stdout
    bundled = run(
        [
            str(python),
            "-c",
            "from gradio_diffusion_preview.bundled.shapes import model_dir; "
            "print(model_dir()); print((model_dir() / 'model_index.json').is_file())",
        ],
        env=isolated,
    ).stdout.split()
    assert Path(bundled[0]).resolve().is_relative_to(venv.resolve()) and bundled[1] == "True"

    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(SERVE_APP)
    log = tmp_path / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(python), str(app), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process, log)
        assert f"IMPORTED {venv}" in log.read_text() or str(venv.resolve()) in log.read_text()

        page = browser.new_page(viewport={"width": 900, "height": 700})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.get_by_test_id("diffusion-preview").wait_for(timeout=30_000)
        page.get_by_test_id("final-image").wait_for(timeout=30_000)
        assert page.get_by_text("Loading...").count() == 0
        assert page.get_by_test_id("final-image").evaluate("img => img.naturalWidth") == 64
        page.screenshot(path=output_dir / "packaged.png")
        assert not errors, errors
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
