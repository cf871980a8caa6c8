"""``make space`` (release/space.py) assembles a Space folder that starts and generates: the demo,
its catalogue, a README with the Space's front matter, the wheel, and requirements that install
that wheel (by path beside them, or by its address in the Space for Hugging Face, which installs
requirements before the other files are there).

The folder's requirements are resolved by pip in a fresh environment (a dry run: torch and
diffusers are not downloaded and installed here); then the folder's own ``app.py`` runs from a
fresh environment holding the wheel (third-party packages borrowed from the development
environment, never its editable install of this package) and draws with the bundled model,
checked through ``gradio_client``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from api_results import final_state
from gradio_client import Client
from testenv import ROOT, free_port

pytestmark = pytest.mark.slow
PACKAGE = "gradio_diffusion_preview"


def space_module():
    spec = importlib.util.spec_from_file_location("release_space", ROOT / "release" / "space.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return space_module().build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_requirement_is_the_wheel_beside_or_its_address_in_the_space():
    space = space_module()
    name = f"{PACKAGE}-0.1.0-py3-none-any.whl"
    assert space.requirement(name) == f"./{name}[diffusers,inference]"
    assert space.requirement(name, "someone/studio") == (
        f"{PACKAGE}[diffusers,inference] @ "
        f"https://huggingface.co/spaces/someone/studio/resolve/main/{name}"
    )
    with pytest.raises(ValueError, match="owner/name"):
        space.requirement(name, "not a space id")


def test_the_assembled_space_starts_and_generates(tmp_path: Path, wheel: Path):
    folder = space_module().assemble(tmp_path / "space", wheel)
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(
        ["README.md", "app.py", "catalogue.toml", "requirements.txt", wheel.name]
    )
    front = (folder / "README.md").read_text().split("---")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines() if ": " in line)
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    import gradio

    assert fields["sdk_version"] == gradio.__version__  # the Gradio the tests ran with

    # pip resolves the requirements to the wheel beside them, with the demo's extras
    report = tmp_path / "report.json"
    resolver = fresh_venv(tmp_path / "resolve")
    pip(
        resolver,
        *("install", "--dry-run", "--quiet", "--report", str(report)),
        *("-r", "requirements.txt"),
        cwd=folder,
        timeout=600,
    )
    planned = {
        item["metadata"]["name"].lower(): item for item in json.loads(report.read_text())["install"]
    }
    assert planned[PACKAGE]["download_info"]["url"] == (folder / wheel.name).resolve().as_uri()
    assert {"gradio", "diffusers", "torch", "huggingface_hub"} <= set(planned), sorted(planned)

    # the folder's app starts from an environment holding the wheel, and draws
    python = fresh_venv(tmp_path / "venv")
    pip(python, "install", "--no-deps", "--no-index", "--quiet", str(folder / wheel.name))
    borrow_site_packages(python, tmp_path / "borrowed")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    log = tmp_path / "space.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(python), "app.py"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        client = Client(url, verbose=False)
        job = client.submit(
            *("diffusers", "shapes", "a red circle on a blue background", ""),
            *(3, 7.5, 5, 64, 64, 1, "{}"),
            api_name="/generate",
        )
        final = final_state(job, timeout=180)
        assert final["status"] == "done", final
        assert final["model"] == "shapes" and len(final["images"]) == 1
        client.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    served_from = run(
        [str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], env=env
    ).strip()
    assert Path(served_from).resolve().is_relative_to((tmp_path / "venv").resolve())
