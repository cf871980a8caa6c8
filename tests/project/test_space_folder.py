"""``make space`` (release/space.py) assembles a Space folder that starts and generates: the demo,
its catalogue, a README with the Space's front matter, the wheel, and requirements that install
that wheel (by path beside them, or by its address in the Space for Hugging Face, which installs
requirements before the other files are there).

Each kind of Space's requirements (CPU, GPU, Inference-only; docs/deploy.md) pins the package and
resolves to the right torch: the CPU build from PyTorch's CPU index, PyPI's CUDA build, none.
The folder's requirements are resolved by pip in a fresh environment (a dry run: torch and
diffusers are not downloaded and installed here); then the folder's own ``app.py`` runs from a
fresh environment holding the wheel (third-party packages borrowed from the development
environment, never its editable install of this package) and draws with the bundled model,
checked through ``gradio_client``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from api_results import final_state
from gradio_client import Client
from space_apps import (
    PACKAGE,
    borrow_site_packages,
    fresh_venv,
    pip,
    run,
    served_space,
    space_module,
)
from testenv import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = pytest.mark.slow
TORCH = "2.13.0"
"""The torch the Spaces' requirements pin: this machine's CPU file (Makefile's setup)."""


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


def requirement_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_each_spaces_requirements_pin_the_package_and_their_torch():
    """demo/'s requirements for a CPU, a GPU and an Inference-only Space, and the front matter:
    the package pinned to this version, torch's CPU build from PyTorch's CPU index on CPU
    hardware, PyPI's (CUDA) torch on a GPU, no torch without a local model."""
    pinned = f"=={tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']}"
    demo = ROOT / "demo"
    assert requirement_lines(demo / "requirements.txt") == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f"torch=={TORCH}+cpu",
        f"gradio-diffusion-preview[diffusers,inference]{pinned}",
    ]
    assert requirement_lines(demo / "requirements-gpu.txt") == [
        f"torch=={TORCH}",
        f"gradio-diffusion-preview[diffusers,inference]{pinned}",
    ]
    assert requirement_lines(demo / "requirements-inference.txt") == [
        f"gradio-diffusion-preview[inference]{pinned}"
    ]
    front = front_matter(demo / "README.md")
    # the Python the torch tier of the tests runs on (the others run the no-torch parts)
    assert front["python_version"] == '"3.11"' == f'"{sys.version_info[0]}.{sys.version_info[1]}"'
    assert front["suggested_hardware"] == "cpu-basic"


def front_matter(readme: Path) -> dict[str, str]:
    front = readme.read_text().split("---")[1]
    return dict(line.split(": ", 1) for line in front.strip().splitlines() if ": " in line)


@pytest.mark.parametrize("hardware", ["cpu", "gpu", "inference"])
def test_each_spaces_requirements_resolve_to_the_wheel_and_the_right_torch(
    tmp_path: Path, package_wheel: Path, hardware: str
):
    """The assembled folder's requirements resolved by pip (a dry run, each line alone: the
    folder's full resolution is the next test's) with only PyPI and, on CPU hardware, PyTorch's
    CPU index, here a local folder holding its torch file (the machine's configured indexes
    and files ignored): the CPU Space gets the CPU build, the GPU Space PyPI's CUDA build."""
    folder = space_module().assemble(tmp_path / "space", package_wheel, hardware=hardware)
    suggested = {"cpu": "cpu-basic", "gpu": "t4-small", "inference": "cpu-basic"}[hardware]
    assert front_matter(folder / "README.md")["suggested_hardware"] == suggested
    catalogue = "catalogue-inference.toml" if hardware == "inference" else "catalogue.toml"
    assert (folder / "catalogue.toml").read_text() == (ROOT / "demo" / catalogue).read_text()
    requirements = (folder / "requirements.txt").read_text()
    assert requirements.count(package_wheel.name) == 1
    cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert (cpu_index in requirements) == (hardware == "cpu")
    if hardware == "cpu":
        mirror = tmp_path / "cpu-index"
        mirror.mkdir()
        (cpu_wheel,) = Path(os.environ.get("PIP_FIND_LINKS", "/opt/wheels")).glob(
            f"torch-{TORCH}+cpu-cp311-*.whl"
        )
        (mirror / cpu_wheel.name).symlink_to(cpu_wheel)
        requirements = requirements.replace(cpu_index, f"--find-links {mirror}")
        (folder / "requirements.txt").write_text(requirements)
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PYTHONPATH")}
    env["PIP_CONFIG_FILE"] = os.devnull  # PyPI only: no local index, file folder or cap
    pip(
        fresh_venv(tmp_path / "resolve"),
        *("install", "--dry-run", "--no-deps", "--quiet", "--report", str(report)),
        *("-r", "requirements.txt"),
        cwd=folder,
        env=env,
        timeout=600,
    )
    planned = {
        item["metadata"]["name"].lower(): item for item in json.loads(report.read_text())["install"]
    }
    wheel_in_folder = (folder / package_wheel.name).resolve()
    assert planned[PACKAGE]["download_info"]["url"] == wheel_in_folder.as_uri()
    torch = planned.get("torch")
    if hardware == "inference":
        assert torch is None and sorted(planned) == [PACKAGE]
        return
    if hardware == "cpu":
        assert torch["metadata"]["version"] == f"{TORCH}+cpu"
        assert torch["download_info"]["url"].startswith(mirror.resolve().as_uri())
    else:
        assert torch["metadata"]["version"] == TORCH
        assert torch["download_info"]["url"].startswith("https://files.pythonhosted.org/")
        assert any(need.startswith("nvidia-") for need in torch["metadata"]["requires_dist"])


def test_the_assembled_space_starts_and_generates(tmp_path: Path, package_wheel: Path):
    folder = space_module().assemble(tmp_path / "space", package_wheel)
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(
        ["README.md", "app.py", "catalogue.toml", "requirements.txt", package_wheel.name]
    )
    fields = front_matter(folder / "README.md")
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    import gradio

    assert fields["sdk_version"] == gradio.__version__  # the Gradio the tests ran with

    # pip resolves the requirements to the wheel beside them, with the demo's extras (the CPU
    # torch from this machine's file: PyTorch's CPU index is not reachable here)
    requirements = folder / "requirements.txt"
    cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu\n"
    requirements.write_text(requirements.read_text().replace(cpu_index, ""))
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
    wheel_in_folder = (folder / package_wheel.name).resolve()
    assert planned[PACKAGE]["download_info"]["url"] == wheel_in_folder.as_uri()
    assert {"gradio", "diffusers", "torch", "huggingface_hub"} <= set(planned), sorted(planned)

    # the folder's app starts from an environment holding the wheel, and draws
    python = fresh_venv(tmp_path / "venv")
    pip(python, "install", "--no-deps", "--no-index", "--quiet", str(folder / package_wheel.name))
    borrow_site_packages(python, tmp_path / "borrowed")
    log = tmp_path / "space.log"
    with served_space(folder, python, {"HF_HUB_OFFLINE": "1"}, log=log, isolated=True) as url:
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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    served_from = run(
        [str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], env=env
    ).strip()
    assert Path(served_from).resolve().is_relative_to((tmp_path / "venv").resolve())
