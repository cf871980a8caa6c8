"""A Space's app started as Hugging Face starts it: ``python app.py`` in the Space's folder, from
a given Python, until it serves; then stopped with its whole process group. Shared by the tests
of the demo folder, the folder ``make space`` assembles and the Inference-only Space.

``NO_TORCH`` runs the app in a process where ``import torch`` fails (as where torch is not
installed), so an app that needs torch fails its test even where the environment has it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
from testenv import free_port

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
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not (isolated and k == "PYTHONPATH")}
    environ.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    environ.update(env or {})
    command = [str(python), "-c", NO_TORCH] if without_torch else [str(python), "app.py"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + seconds
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
