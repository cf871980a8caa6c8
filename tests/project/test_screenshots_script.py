"""bench/screenshots.py, which retakes the README's and docs' screenshots from the current
demo, still runs: its quick mode serves the demo, starts a run in Chromium and writes one
desktop screenshot mid-run, which must be a real picture of the page (not blank)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
from testenv import ROOT

pytestmark = pytest.mark.browser


def test_the_screenshot_script_writes_a_picture_of_the_demo_mid_run(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    ran = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "screenshots.py"), "--quick", "--out", tmp_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["screenshot-light.png"]
    with PIL.Image.open(tmp_path / "screenshot-light.png") as image:
        assert image.size == (1366, 900)
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200, len(colours)  # text, controls and a step preview, not a blank
    assert pixels.std() > 10, pixels.std()
