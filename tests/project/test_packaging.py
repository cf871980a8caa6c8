"""The wheel we ship: built from a clean copy of the repository the way the Makefile builds it,
installed into a fresh virtual environment, and mounted by Chromium from that environment.

The build is ``make release-check``'s (``release/check.py``: ``gradio cc build`` in a clean copy),
which ``make test`` runs before pytest: its wheel in ``dist/release/`` is checked here when its
stamp says it was built from the sources as they are now; otherwise this test builds one the
same way (so the wheel is built once per ``make test``, and a test run alone still builds).

The development venv has this package installed editable, so the fresh environment borrows the
development venv's third-party packages (gradio, numpy, ...) through a folder of links that
leaves out every editable install: the only ``gradio_diffusion_preview`` it can import is the
wheel's.
"""

from __future__ import annotations

import importlib.util
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
from testenv import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PACKAGE = "gradio_diffusion_preview"
REQUIRED_IN_WHEEL = [
    f"{PACKAGE}/templates/component/index.js",
    f"{PACKAGE}/templates/component/style.css",
    f"{PACKAGE}/templates/example/index.js",
    f"{PACKAGE}/py.typed",
    # the plugin guide's example without previews, for pip users to copy (issue #24)
    *(
        f"{PACKAGE}/examples/http-image-service/{name}"
        for name in ("image_service.py", "http_image_backend.py", "test_http_image_backend.py")
    ),
    # the bundled shapes model (issue #9): weights, configs, tokenizer, preview factors, card
    *(
        f"{PACKAGE}/bundled/shapes/model/{name}"
        for name in (
            "model_index.json",
            "diffusion_preview.json",
            "latent_rgb.json",
            "README.md",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/tokenizer.json",
            "tokenizer/tokenizer_config.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
        )
    ),
]
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


def release_check():
    """``release/check.py`` as a module (its clean-copy build and the build's stamp)."""
    spec = importlib.util.spec_from_file_location("release_check", ROOT / "release" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_wheel(tmp_path: Path) -> Path:
    """The wheel built from a clean copy of this checkout: ``make release-check``'s when it was
    built from these very sources, else one built here the same way."""
    check = release_check()
    stamped = check.stamped_wheel()
    if stamped is not None:
        return stamped
    try:
        _, wheel = check.build(tmp_path / "dist")
    except SystemExit as failed:
        pytest.fail(str(failed))
    return wheel


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


def test_wheel_built_from_clean_checkout_installs_and_mounts(tmp_path, browser, output_dir):
    wheel = clean_wheel(tmp_path)

    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in REQUIRED_IN_WHEEL if name not in names]
    assert not missing, f"{wheel.name} lacks {missing}"

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
