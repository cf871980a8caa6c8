"""The Space-shaped apps of ``remote_space_apps.py`` served in a subprocess by a given Gradio:
6 from this venv, 5 from ``.venv-gradio5`` (made by ``make gradio5``, which ``make test``
runs), and what each run did there: the seed it used, the steps it ran, whether it was closed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from testenv import ROOT, SUPPORT, free_port

PYTHONS = {
    "gradio6": Path(sys.executable),
    "gradio5": ROOT / ".venv-gradio5" / "bin" / "python",
    "gradio4": ROOT / ".venv-gradio4" / "bin" / "python",
}
"""The interpreter serving each Gradio version's apps."""
ENVIRONMENT = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
"""The apps' environment: ours, without a path that would mix this venv's packages in."""
MISSING = {
    "gradio5": "the Gradio 5 environment .venv-gradio5 is missing: `make gradio5` makes it "
    "(`make test` always does)",
    "gradio4": "the Gradio 4.44 environment .venv-gradio4 is missing: `make test-gradio4` makes "
    "it and runs these tests on it",
}


@dataclass
class SpaceServer:
    """One ``remote_space_apps.py`` process: its ``url``, and its ``state`` folder of run logs."""

    version: str
    url: str
    state: Path
    process: subprocess.Popen = field(repr=False)

    def tag(self) -> str:
        """A fresh prompt word: the app logs and gates the runs of a prompt starting with it."""
        return "t" + uuid.uuid4().hex[:12]

    def lines(self, tag: str) -> list[str]:
        path = self.state / f"{tag}.log"
        return path.read_text().splitlines() if path.exists() else []

    def seeds_used(self, tag: str) -> list[int]:
        return [int(line.split("=")[1]) for line in self.lines(tag) if line.startswith("start")]

    def steps_run(self, tag: str) -> int:
        return sum(line.startswith("step ") for line in self.lines(tag))

    def closed(self, tag: str) -> int:
        return self.lines(tag).count("closed")

    def cancels(self) -> int:
        """How many jobs the app's ``/cancel`` route has cancelled so far (all runs)."""
        path = self.state / "cancels.log"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def hold(self, tag: str, permits: int = 0) -> None:
        """Let the tag's runs take ``permits`` steps, then wait at the next."""
        (self.state / f"{tag}.gate").write_text(str(permits))

    def open(self, tag: str) -> None:
        (self.state / f"{tag}.gate").write_text("open")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_space_apps(version: str, state: Path) -> SpaceServer:
    """Serve the apps with ``version``'s Gradio on a free loopback port; wait until it answers
    (at most 120 s: a cold Gradio import on a busy machine is slow)."""
    python = PYTHONS[version]
    port = free_port()
    state.mkdir(parents=True, exist_ok=True)
    out = (state / "server.out").open("w")
    process = subprocess.Popen(
        [str(python), str(SUPPORT / "remote_space_apps.py"), f"--port={port}", f"--state={state}"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**ENVIRONMENT, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            # Gradio 5 and 6 answer under /gradio_api, Gradio 4 at the root
            for info in ("/gradio_api/info", "/info"):
                if httpx.get(url + info, timeout=2).status_code == 200:
                    return SpaceServer(version, url, state, process)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
    raise RuntimeError(
        f"the {version} Space apps did not start: {(state / 'server.out').read_text()[-2000:]}"
    )
