"""A waiting run's fraction done (issue 24, item 3): ``Status(..., progress=0.4)`` from a
service that says how far along it is, shown in the run's state and the component's value,
and held by the conformance kit to a fraction from 0 to 1."""

from __future__ import annotations

import math

import pytest
from toy_backends import WaitingBackend

from gradio_diffusion_preview import Status, stream
from gradio_diffusion_preview.run_progress import fraction_done
from gradio_diffusion_preview.state import PreviewData
from gradio_diffusion_preview.testing import ConformanceError, check_status
from gradio_diffusion_preview.testing.report import describe_event


def test_a_waiting_runs_fraction_done_reaches_its_states_and_clears_at_the_end():
    backend = WaitingBackend(
        [
            (Status("queued", position=2, queue_size=2), 0.01),
            (Status("generating", progress=0.4), 0.01),
            (Status("generating", "Upscaling", progress=0.9), 0.01),
        ]
    )
    states = list(stream(backend, prompt="p", steps=20, min_interval=0))
    waiting = [(s.phase, s.progress) for s in states if s.phase]
    assert waiting == [("queued", None), ("generating", 0.4), ("generating", 0.9)]
    assert states[-1].status == "done" and states[-1].progress is None


def test_the_value_the_browser_and_api_clients_receive_carries_progress():
    schema = PreviewData.model_json_schema()["properties"]
    assert "progress" in schema
    assert PreviewData(status="queued", phase="generating", progress=0.25).progress == 0.25


@pytest.mark.parametrize(
    ("given", "shown"),
    [(0.4, 0.4), (0, 0.0), (1, 1.0), (1.5, 1.0), (-0.2, 0.0), (math.nan, None), (True, None)],
)
def test_a_fraction_out_of_range_is_held_to_0_to_1_and_a_non_number_is_dropped(given, shown):
    assert fraction_done(given) == shown


def test_the_kit_passes_a_backend_that_reports_its_fraction_done():
    backend = WaitingBackend([(Status("generating", progress=p), 0.0) for p in (0, 0.5, 1)])
    check_status(backend, prompt="p", steps=4)


@pytest.mark.parametrize("bad", [1.5, -0.1, math.inf, math.nan, True, "40%"])
def test_the_kit_fails_a_fraction_done_that_is_not_0_to_1_and_says_the_fix(bad):
    backend = WaitingBackend(
        [(Status("generating", progress=0.2), 0.0), (Status("generating", progress=bad), 0.0)]
    )
    with pytest.raises(ConformanceError) as error:
        check_status(backend, prompt="p", steps=4)
    message = str(error.value)
    assert "expected Status.progress to be None or a fraction done from 0 to 1" in message
    assert f"saw Status #2: progress={bad!r}" in message
    assert "40% is progress=0.4" in error.value.fix
    assert "Status('generating', progress=0.2)" in message  # the events show the fraction


def test_a_status_without_progress_is_described_as_before():
    assert describe_event(Status("queued", position=1)) == "Status('queued', position=1)"
