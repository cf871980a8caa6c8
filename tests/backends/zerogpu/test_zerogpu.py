"""ZeroGPU (issue #20): runs on a ``ZeroGPUBackend`` go through the real ``spaces`` 0.51.3
wrapper (a forked worker per GPU, arguments and every yielded value pickled, its stop event),
with only its scheduler client stubbed (``support/zerogpu_space.py``); the run's handle, owner,
policy and fair queue stay in the app's process. The scenarios (``support/zerogpu_scenarios.py``)
run outside the test process, since ``spaces`` patches the process it is imported in: those on
the toy backend one after another in one process (each with its own backend, twin and forked
workers), the two that load the bundled model in another. The backend waits at a gate
before each step, so each check counts steps, never time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gradio_diffusion_preview

TESTS = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = Path(gradio_diffusion_preview.__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("zerogpu")
"""One worker runs the module: its scenario processes (about 11 s of CPU) run once per worker
that runs any of its tests."""


TOY_SCENARIOS = (
    "previews_and_final",
    "stop",
    "finish_early",
    "two_visitors",
    "fair_queue",
    "compare_tab",
    "refused",
    "async_handler",
)
MODEL_SCENARIOS = ("preload", "demo")  # the bundled model: torch and diffusers imported


def run_scenarios(*names: str) -> dict[str, dict]:
    """What each scenario saw, run in that order in one new process."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), str(TESTS)]),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(TESTS / "support" / "zerogpu_scenarios.py"), *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, dict] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            seen.update(json.loads(line))
    return seen


@pytest.fixture(scope="module")
def shared_runs() -> dict[tuple[str, ...], dict[str, dict]]:
    """Each group of scenarios, run once for the module (when a test first asks for one)."""
    return {}


@pytest.fixture
def scenario(shared_runs):
    """``scenario(name)``: what it saw, from its group's one run; a scenario that raised fails
    its test with the traceback."""

    def seen(name: str) -> dict:
        group = TOY_SCENARIOS if name in TOY_SCENARIOS else MODEL_SCENARIOS
        if group not in shared_runs:
            shared_runs[group] = run_scenarios(*group)
        found = shared_runs[group]
        assert name in found, f"the scenario {name} printed nothing"
        assert "failed" not in found[name], found[name].get("failed")
        return found[name]

    return seen


def test_previews_and_the_final_image_come_back_from_the_gpu_worker(scenario):
    seen = scenario("previews_and_final")
    assert (seen["status"], seen["step"], seen["images"]) == ("done", 6, [[64, 64]])
    assert seen["previews"] >= 1
    assert seen["ran"] == 6
    assert seen["scheduled"] == [{"session": "alice", "seconds": 7, "gpu": 0}]


def test_stop_reaches_the_worker_within_a_step(scenario):
    seen = scenario("stop")
    assert seen["alice"] == [seen["run_id"]]  # the app's registry holds the worker's run
    assert seen["bob_stops"] is False  # only its owner stops it
    assert seen["stopped"] is True
    assert seen["status"] == "cancelled"
    assert seen["ran"] == 3  # the worker heard it at its next step; 10 more were let through
    assert seen["after"] == []


def test_finish_early_reaches_the_worker_and_keeps_its_image(scenario):
    seen = scenario("finish_early")
    assert seen["finished"] is True
    assert seen["status"] == "done" and seen["images"] == [[64, 64]]
    assert seen["step"] == seen["ran"] == 4  # the step under way, then the image
    assert seen["message"].startswith("Finished early")


def test_two_visitors_runs_are_owned_by_their_own_sessions(scenario):
    seen = scenario("two_visitors")
    assert seen["owned"] == {"alice": [seen["ids"]["alice"]], "bob": [seen["ids"]["bob"]]}
    assert seen["cross"] is False
    # each lease was asked for with its own visitor's request (their own GPU quota)
    assert sorted(lease["session"] for lease in seen["scheduled"]) == ["alice", "bob"]
    assert sorted(lease["gpu"] for lease in seen["scheduled"]) == [0, 1]


def test_the_fair_queue_is_the_apps_across_gpu_workers(scenario):
    seen = scenario("fair_queue")
    assert seen["refused"]["status"] == "error" and seen["refused"]["reason"] == "busy"
    assert seen["ends"] == ["done", "done", "done"]
    scheduled = seen["scheduled"]
    assert [lease["session"] for lease in scheduled] == ["alice", "bob", "carol"]
    assert {lease["gpu"] for lease in scheduled} == {0, 1}


def test_a_compare_runs_each_entry_with_its_own_gpu_duration(scenario):
    seen = scenario("compare_tab")
    assert seen["ends"] == [["done", 3, "short", 1], ["done", 3, "long", 1]]
    assert sorted(lease["seconds"] for lease in seen["scheduled"]) == [11, 22]
    assert {lease["session"] for lease in seen["scheduled"]} == {"alice"}


def test_a_run_zerogpu_refuses_ends_as_an_error(scenario):
    seen = scenario("refused")
    assert (seen["status"], seen["reason"]) == ("error", "rate_limited")
    assert "exceeded your GPU quota" in seen["message"]
    assert "exceeded your GPU quota" in seen["error"]  # the Gradio event ends as an error
    assert seen["ran"] == 0 and seen["after"] == []


def test_an_async_handler_streams_and_stops_like_a_sync_one(scenario):
    seen = scenario("async_handler")
    assert (seen["status"], seen["stopped"]) == ("cancelled", True)
    assert seen["ran"] == 2
    assert [lease["session"] for lease in seen["scheduled"]] == ["alice"]


def test_a_model_loaded_at_startup_is_reused_by_every_gpu_worker(scenario):
    seen = scenario("preload")
    assert seen["ends"] == [["done", 3, 1], ["done", 3, 1]]
    assert [lease["gpu"] for lease in seen["scheduled"]] == [0, 1]  # two forked workers
    assert seen["at_startup"] == seen["after_runs"] == 1


def test_the_demo_runs_its_local_entries_on_zerogpu_hardware(scenario):
    seen = scenario("demo")
    local = [e for e in seen["entries"].values() if e[0] == "diffusers-zerogpu"]
    assert len(local) == 4 and not any("device" in options for _, options in local)
    assert {backend for backend, _ in seen["entries"].values()} == {
        "diffusers-zerogpu",
        "hf-inference",
    }
    assert seen["slots"]["diffusers-zerogpu"] == seen["slots"]["diffusers"] == 1
    assert (seen["status"], seen["images"], len(seen["scheduled"])) == ("done", 1, 1)
