"""The demo runs the ways a Space and a developer start it: ``gradio demo/app.py`` (Gradio's
reload mode, which looks for the module's ``demo``) serving a page that generates with the
bundled model, checked through ``gradio_client``; and the Space folder is complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_results import final_state
from gradio_client import Client
from testenv import ROOT, free_port

pytestmark = pytest.mark.slow
DEMO = ROOT / "demo"


def wait_until_served(url: str, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the demo did not serve {url} within {seconds} s")


def test_gradio_cli_serves_the_demo_and_it_draws_with_the_bundled_model(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    gradio_cli = Path(sys.executable).with_name("gradio")
    process = subprocess.Popen(
        [str(gradio_cli), "demo/app.py"],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "out.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(url, process)
        client = Client(url, verbose=False)
        job = client.submit(
            "diffusers",
            "shapes",
            "a red circle on a blue background",
            "",
            3,
            7.5,
            5,
            64,
            64,
            1,
            "{}",
            api_name="/generate",
        )
        final = final_state(job, timeout=180)
        assert final["status"] == "done", final
        assert final["model"] == "shapes" and final["seeds"] == [5]
        assert len(final["images"]) == 1
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    log = (tmp_path / "out.log").read_text()
    # it ran in Gradio's reload mode, and the reloader found the launched Blocks as `demo`
    # (without it: "Launching demo not found ..." and every edit reloads nothing)
    assert "Watching" in log and "not found" not in log, log


def test_the_demo_folder_is_a_space():
    front = (DEMO / "README.md").read_text().split("---")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines() if ": " in line)
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    assert (DEMO / fields["app_file"]).is_file() and (DEMO / "catalogue.toml").is_file()
    requirements = [
        line
        for line in (DEMO / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    # torch's CPU build, then the package pinned (tests/project/test_space_folder.py checks
    # the pins and each Space's requirements)
    assert requirements[-1].startswith("gradio-diffusion-preview[diffusers,inference]==")
