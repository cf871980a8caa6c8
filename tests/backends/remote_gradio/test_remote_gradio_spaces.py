"""The remote Gradio backend against real apps shaped like popular text-to-image Spaces
(tests/support/space_apps.py), each served by Gradio 6 (this venv) and by Gradio 5 (the
``.venv-gradio5`` that ``make test`` makes), in a subprocess on loopback.

Shown on both versions: a streaming FLUX-style ``infer`` relays each intermediate image as a
step preview, in order, then its final image; the run's value and PNG info carry the seed the
app actually used; Stop reaches the app within a step; a gallery app reports its one seed for
all its images; an app with no prompt runs; an app's ``gr.Error`` arrives as its text; seed
sliders capped at 2**31 - 1 get seeds within the cap.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from remote_gradio_client import gradio_backend
from space_server import SpaceServer

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.request import InvalidRequest, build_request, validate_request

SPACE_CAP = 2**31 - 1
RUNS = 20
FINAL_RED = 250


def red(image) -> int:
    return int(np.asarray(image.convert("RGB"))[0, 0, 0])


def seed_colour(image) -> tuple[int, int]:
    pixel = np.asarray(image.convert("RGB"))[0, 0]
    return int(pixel[1]), int(pixel[2])


def near(a: int, b: int) -> bool:
    """Equal up to lossy compression (Gradio sends gr.Image values as WebP)."""
    return abs(a - b) <= 4


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.02)


# --- seeds within the app's cap (issue #32) -----------------------------------------------


def test_runs_without_a_seed_all_finish_on_a_space_capped_at_2_31(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/seeded")
    tag = space_apps.tag()
    finals = [list(stream(backend, prompt=f"{tag} a fox"))[-1] for _ in range(RUNS)]
    assert [s.message for s in finals if s.status != "done"] == []
    used = space_apps.seeds_used(tag)
    assert len(used) == RUNS and all(0 <= seed <= SPACE_CAP for seed in used), used
    assert len(set(used)) > RUNS // 2  # drawn at random, not one fixed seed
    assert backend.capabilities.seed_range == (0, SPACE_CAP)
    assert [s.seeds for s in finals] == [[seed] for seed in used]


def test_a_seed_above_the_spaces_cap_is_refused_before_the_run(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/seeded")
    tag = space_apps.tag()
    with pytest.raises(InvalidRequest) as refused:
        validate_request(build_request(backend, {"prompt": tag, "seed": SPACE_CAP + 1}), backend)
    assert f"from 0 to {SPACE_CAP}" in str(refused.value), refused.value
    final = list(stream(backend, prompt=tag, seed=SPACE_CAP + 1))[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert f"from 0 to {SPACE_CAP}" in final.message
    assert space_apps.seeds_used(tag) == []  # refused here: the app was never called
    assert list(stream(backend, prompt=tag, seed=SPACE_CAP))[-1].status == "done"
    assert space_apps.seeds_used(tag) == [SPACE_CAP]
