"""The demo as an Inference-only Space (no torch): the folder ``make space HARDWARE=inference``
assembles (the demo, its Inference-only catalogue, the wheel), its app started as a Space starts
it (``python app.py``) from a fresh environment holding the wheel, serves and draws through
``gradio_client`` in a process where torch cannot be imported; so does a copy of only ``demo/``
with the variable ``DIFFUSION_PREVIEW_CATALOGUE=catalogue-inference.toml`` (docs/deploy.md).
``make test`` runs these under Python 3.10 (Spaces' default) and 3.13 too, in environments
without torch (the Makefile's test-py310 and test-py313); the loopback router stands in for
Hugging Face's."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from api_results import final_state
from fake_hf_router import serve_router
from gradio_client import Client
from space_apps import borrow_site_packages, fresh_venv, pip, run, served_space, space_module
from testenv import ROOT

pytestmark = pytest.mark.slow
SCHNELL = "black-forest-labs/FLUX.1-schnell"


@pytest.fixture
def router(monkeypatch):
    yield from serve_router(monkeypatch, {SCHNELL: ("hf-inference",)})


def draws_with_flux_schnell(url: str, router) -> None:
    client = Client(url, verbose=False)
    job = client.submit(
        *("hf-inference", "flux-schnell", "a lighthouse at dusk", ""),
        *(4, None, 5, 256, 256, 1, "{}"),  # FLUX.1 schnell takes no guidance
        api_name="/generate",
    )
    final = final_state(job, timeout=120)
    client.close()
    assert final["status"] == "done", final["message"]
    assert final["model"] == "flux-schnell" and len(final["images"]) == 1
    assert len(router.posts(SCHNELL)) == 1


def secrets(router) -> dict[str, str]:
    return {
        "HF_TOKEN": router.token,  # the Space's secret
        "DIFFUSION_PREVIEW_HF_ROUTER_URL": router.url,
        # The catalogue's live listing asks the loopback router's Hub API too: huggingface.co
        # cannot be reached here, and its retries held a loaded machine's start-up for 15 s.
        "DIFFUSION_PREVIEW_HF_HUB_URL": router.hub_url,
        "HF_HUB_OFFLINE": "0",  # only the loopback router can be reached
    }


def test_the_inference_only_space_serves_and_draws_without_torch(
    tmp_path: Path, package_wheel: Path, router
):
    folder = space_module().assemble(tmp_path / "space", package_wheel, hardware="inference")
    python = fresh_venv(tmp_path / "venv")  # this Python's version: 3.10 in make test-py310
    pip(python, "install", "--no-deps", "--no-index", "--quiet", str(folder / package_wheel.name))
    borrow_site_packages(python, tmp_path / "borrowed")
    log = tmp_path / "space.log"
    with served_space(
        folder, python, secrets(router), log=log, without_torch=True, isolated=True
    ) as url:
        draws_with_flux_schnell(url, router)
    version = run([str(python), "-c", "import sys; print(sys.version_info[:2])"]).strip()
    assert version == str(sys.version_info[:2])  # the Python of this run: 3.10, 3.11 or 3.13


def test_a_copy_of_the_demo_folder_with_the_catalogue_variable_draws_without_torch(
    tmp_path: Path, router
):
    folder = shutil.copytree(ROOT / "demo", tmp_path / "space")
    env = {**secrets(router), "DIFFUSION_PREVIEW_CATALOGUE": "catalogue-inference.toml"}
    log = tmp_path / "space.log"
    with served_space(folder, sys.executable, env, log=log, without_torch=True) as url:
        draws_with_flux_schnell(url, router)
