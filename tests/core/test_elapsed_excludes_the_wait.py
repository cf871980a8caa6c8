"""The time a run shows counts from when it started running: a wait in a queue (this app's fair
queue, a service's queue such as Ray Serve's) is its own figure, ``waited``, never part of the
final ``elapsed`` (nor of the images' "seconds"). Time is a clock the test moves."""

from __future__ import annotations

import numpy as np
import PIL.Image
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview.events import Finished, Started, Status, Step
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.run_engine import RunEngine, RunSpec
from gradio_diffusion_preview.run_handles import RunRegistry
from gradio_diffusion_preview.run_progress import RunProgress
from gradio_diffusion_preview.run_state import RunState


class ManualClock:
    """A clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def image() -> PIL.Image.Image:
    return PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8))


def test_a_wait_in_the_services_queue_is_waited_not_elapsed():
    clock = ManualClock()
    progress = RunProgress("svc", "m", 64, clock)
    state = RunState(status="running", backend="svc")
    seen: list[tuple[str, float, float | None]] = []

    def at(now: float, event) -> None:
        nonlocal state
        clock.now = now
        state = progress.apply(state, event)
        seen.append((type(event).__name__, state.elapsed, state.waited))

    at(0.0, Started("m", 2, [1], 8, 8))
    at(1.0, Status("queued", position=2))
    at(4.0, Status("queued", position=1))
    at(5.0, Step(1, 2))
    at(6.5, Step(2, 2))
    at(7.0, Finished([image()], seeds=[1]))
    assert seen == [
        ("Started", 0.0, None),
        ("Status", 1.0, None),  # while it waits: the time it has waited so far
        ("Status", 4.0, None),
        ("Step", 0.0, 5.0),  # it runs: elapsed from here, the wait its own figure
        ("Step", 1.5, 5.0),
        ("Finished", 2.0, 5.0),
    ]
    assert state.status == "done" and state.steps_per_second == 1 / 1.5


def test_a_run_that_never_waits_has_no_waited_figure():
    clock = ManualClock()
    progress = RunProgress("svc", "m", 64, clock)
    state = RunState(status="running")
    for now, event in [
        (0.0, Started("m", 1, [1], 8, 8)),
        (2.0, Step(1, 1)),
        (3.0, Finished([image()])),
    ]:
        clock.now = now
        state = progress.apply(state, event)
    assert (state.status, state.elapsed, state.waited) == ("done", 3.0, None)


def test_a_loading_phase_after_the_queue_counts_as_running():
    clock = ManualClock()
    progress = RunProgress("svc", "m", 64, clock, waited=2.0)  # 2 s in the app's queue first
    state = RunState(status="running")
    for now, event in [
        (0.0, Status("queued", position=1)),
        (3.0, Status("loading")),
        (4.0, Status("generating")),
        (9.0, Finished([image()])),
    ]:
        clock.now = now
        state = progress.apply(state, event)
    assert (state.elapsed, state.waited) == (6.0, 5.0)


def test_a_wait_in_the_apps_queue_is_waited_and_the_run_counts_from_its_turn():
    clock = ManualClock()
    backend = CountingBackend(step_seconds=0.01)
    entry = CatalogueEntry(id="flat", backend="counting", model="flat")
    policy = Policy(catalogue=[entry], slots={"counting": 1}, limits=Limits(max_steps=500))
    registry = registry_with(backend)
    engine = RunEngine(RunRegistry(), clock=clock, wait_tick=5.0)
    first = engine.states(
        RunSpec("counting", {"model": "flat", "prompt": "p", "steps": 400}, policy, registry),
        engine.open("a"),
    )
    assert next(first).status == "running"
    second = engine.states(
        RunSpec("counting", {"model": "flat", "prompt": "p", "steps": 3}, policy, registry),
        engine.open("b"),
    )
    queued = next(second)
    assert (queued.status, queued.elapsed, queued.waited) == ("queued", 0.0, None)
    clock.now = 40.0  # it waits 40 s for its turn; the clock then stands still
    first.close()  # the first run ends: the second one's turn
    rest = list(second)
    assert [s.status for s in rest][-1] == "done"
    running = [s for s in rest if s.status in ("running", "done")]
    assert running and all(s.waited == 40.0 for s in running), running
    assert rest[-1].elapsed == 0.0, "the final time counts from the run's turn"
