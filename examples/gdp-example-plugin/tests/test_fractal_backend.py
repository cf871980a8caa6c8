"""The example plugin's own tests: the conformance kit, one pytest test per check, plus a few
tests of what is particular to this backend."""

from __future__ import annotations

import numpy as np
import pytest
from gdp_example_plugin.backend import FractalBackend

from gradio_diffusion_preview import (
    GenerationRequest,
    InvalidRequest,
    RunControl,
    Started,
    Step,
    validate_request,
)
from gradio_diffusion_preview.testing import BackendConformanceTests

REQUEST = {"prompt": "a lighthouse in a storm", "steps": 6, "width": 64, "height": 64}


class TestFractalConformance(BackendConformanceTests):
    backend = FractalBackend()
    request = REQUEST
    # No failing_request: every request that passes validation (its options typed by
    # FractalOptions) can run, so the failure check is skipped, with that reason.


class TestJuliaConformance(TestFractalConformance):
    request = {**REQUEST, "model": "julia", "width": 96, "num_images": 2}


def run(**fields):
    backend = FractalBackend()
    request = validate_request(GenerationRequest(**{**REQUEST, "seed": 5, **fields}), backend)
    return list(backend.generate(request, RunControl()))


def test_previews_form_from_noise_towards_the_final_image():
    events = run(steps=8)
    final = np.asarray(events[-1].images[0], dtype=float)
    half = final.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    distances = [
        np.abs(e.preview.astype(float) - half).mean() for e in events if isinstance(e, Step)
    ]
    assert all(b < a for a, b in zip(distances, distances[1:], strict=False))
    assert distances[-1] < 1.0


def test_the_palette_option_changes_the_colours():
    fire = run(options={"palette": "fire"})[-1].images[0]
    ocean = run(options={"palette": "ocean"})[-1].images[0]
    assert fire.size == ocean.size and fire.tobytes() != ocean.tobytes()
    assert run(options={"palette": "fire"})[-1].metadata == {"palette": "fire"}


def test_a_bad_option_is_refused_before_the_run_naming_what_is_allowed():
    with pytest.raises(InvalidRequest, match=r"options.step_delay=-1 .*from 0 to 5"):
        run(options={"step_delay": -1})
    with pytest.raises(InvalidRequest, match=r"options.palette='plaid' .*fire, forest"):
        run(options={"palette": "plaid"})


def test_started_declares_half_size_previews():
    started = run(width=128, height=64)[0]
    assert isinstance(started, Started) and started.preview_size == (64, 32)
