"""The demo as an Inference-only Space (no torch): a copy of only ``demo/``, started as a Space
starts it (``python app.py``) with its Inference-only catalogue, serves and draws through
``gradio_client`` in a process where torch cannot be imported. ``make test`` runs this under
Python 3.10 (Spaces' default) and 3.13 too, in environments without torch (the Makefile's
test-py310 and test-py313); the loopback router stands in for Hugging Face's."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from api_results import final_state
from fake_hf_router import serve_router
from gradio_client import Client
from space_apps import served_space
from testenv import ROOT

pytestmark = pytest.mark.slow
SCHNELL = "black-forest-labs/FLUX.1-schnell"


@pytest.fixture
def router(monkeypatch):
    yield from serve_router(monkeypatch, {SCHNELL: ("hf-inference",)})


def test_the_demo_with_its_inference_only_catalogue_serves_and_draws_without_torch(
    tmp_path: Path, router
):
    space = shutil.copytree(ROOT / "demo", tmp_path / "space")
    env = {
        "DIFFUSION_PREVIEW_CATALOGUE": "catalogue-inference.toml",
        "HF_TOKEN": router.token,  # the Space's secret
        "DIFFUSION_PREVIEW_HF_ROUTER_URL": router.url,
        "HF_HUB_OFFLINE": "0",  # only the loopback router can be reached
    }
    log = tmp_path / "space.log"
    with served_space(space, sys.executable, env, log=log, without_torch=True) as url:
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
    assert "ModuleNotFoundError" not in log.read_text()
