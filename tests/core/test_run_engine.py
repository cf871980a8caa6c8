"""The run engine: one handle per run in every phase, a driver that never raises, and time that
tests drive (the clock and the tick intervals are the engine's settings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from testenv import ROOT
from toy_backends import CountingBackend, Gate, registry_with

from gradio_diffusion_preview import Backend, Capabilities, stream
from gradio_diffusion_preview.fair_queue import FairQueue
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.progress import RUN_DURATIONS, RunDurations
from gradio_diffusion_preview.run_engine import RunEngine, RunSpec
from gradio_diffusion_preview.run_handles import RUNS, RunRegistry


class RaisesAtOnce(Backend):
    """A plugin whose ``generate`` is a plain function that raises before returning events."""

    id = "raises-at-once"
    display_name = "Raises at once (test)"
    location = "local"
    capabilities = Capabilities(any_model=True)

    def generate(self, request, control):
        raise ValueError("the service's client could not be built")


def test_a_generate_that_raises_before_any_event_ends_in_an_error_and_leaves_no_run():
    before = len(RUNS)
    states = list(stream(RaisesAtOnce(), model="m", prompt="p"))  # must not raise
    last = states[-1]
    assert last.status == "error" and last.reason == "backend_error"
    assert "raises-at-once" in last.message and "ValueError" in last.message
    assert len(RUNS) == before, "the run is still registered"


def one_slot_policy(**limits) -> Policy:
    entry = CatalogueEntry(id="flat", backend="counting", model="flat")
    return Policy(catalogue=[entry], slots={"counting": 1}, limits=Limits(max_steps=500, **limits))


def test_a_waiting_run_has_its_id_from_its_first_state_and_cancel_takes_it_out_at_once():
    backend = CountingBackend(step_seconds=0.01)
    registry, policy = registry_with(backend), one_slot_policy()
    engine = RunEngine(RunRegistry(), wait_tick=5.0)  # a late wake-up would show a 2nd queued
    fields = {"model": "flat", "prompt": "p", "steps": 400}
    first = engine.states(RunSpec("counting", fields, policy, registry), engine.open("a"))
    assert next(first).status == "running" and next(first).step >= 0
    handle = engine.open("b")
    waiting = engine.states(RunSpec("counting", fields, policy, registry), handle)
    queued = next(waiting)
    assert (queued.status, queued.run_id, queued.queue_position) == ("queued", handle.id, 1)
    assert handle.phase == "waiting" and handle.position == 1
    assert engine.handles.get(handle.id, "a") is None, "another session cannot reach it"
    assert not handle.finish_early(), "a waiting run has nothing to keep"
    assert handle.cancel()
    rest = list(waiting)
    assert [s.status for s in rest] == ["cancelled"], [s.status for s in rest]
    assert rest[0].run_id == handle.id
    assert handle.phase == "ended" and not handle.cancel()
    assert policy.queue.active() == (1, 0), "it left the line; the first run still runs"
    first.close()
    assert policy.queue.active() == (0, 0) and len(engine.handles) == 0


def test_a_run_cancelled_before_it_starts_never_reaches_its_backend():
    backend = CountingBackend()
    engine = RunEngine(RunRegistry())
    handle = engine.open()
    assert handle.phase == "pending" and handle.cancel()
    spec = RunSpec("counting", {"prompt": "p", "steps": 5}, plugins=registry_with(backend))
    states = list(engine.states(spec, handle))
    assert [s.status for s in states] == ["cancelled"] and backend.steps_run == 0
    assert len(engine.handles) == 0


class SteppingClock:
    """A clock that moves ``step`` seconds each time it is read: time passes without waiting."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_time_limit_is_measured_on_the_engines_clock():
    backend = CountingBackend()
    registry, policy = registry_with(backend), one_slot_policy(time_limit=30.0)
    engine = RunEngine(RunRegistry(), clock=SteppingClock(10.0))  # 3 reads pass the limit
    spec = RunSpec("counting", {"model": "flat", "prompt": "p", "steps": 500}, policy, registry)
    states = list(engine.states(spec, engine.open()))
    last = states[-1]
    assert (last.status, last.reason) == ("error", "timeout"), last
    assert "30 s" in last.message and last.elapsed > 30
    assert len(states) < 100, "stopped at the limit, long before the 500 steps' end"
    assert policy.queue.active() == (0, 0)


def test_finish_early_reaches_only_a_running_run():
    backend = CountingBackend(step_seconds=0.01)
    engine = RunEngine(RunRegistry())
    handle = engine.open("s")
    assert not handle.finish_early(), "not running yet"
    spec = RunSpec(
        "counting", {"prompt": "p", "steps": 400}, plugins=registry_with(backend), min_interval=0
    )
    final = None
    for state in engine.states(spec, handle):
        if state.step >= 3 and handle.phase == "running":
            assert engine.handles.get(handle.id, "s") is handle
            handle.finish_early()
        final = state
    assert final.status == "done" and "Finished early" in final.message
    assert not handle.finish_early() and engine.handles.get(handle.id) is None


def test_stopping_an_events_runs_stops_only_that_sessions_runs_of_that_event():
    registry = RunRegistry()
    mine = [registry.open("s", "e1"), registry.open("s", "e1")]  # a compare: one event, 2 runs
    others = [registry.open("s", "e2"), registry.open("t", "e1"), registry.open(None, None)]
    assert sum(handle.cancel() for handle in registry.of_event("s", "e1")) == 2
    assert all(handle.control.cancelled for handle in mine)
    assert not any(handle.control.cancelled for handle in others)
    assert registry.of_event("t", "e2") == []


def test_the_engine_and_its_adapters_run_without_importing_gradio():
    """The engine, and ``stream``/``astream`` as a script, a worker or a Ray replica use them:
    Gradio is imported only by an app (``stream`` looking for the Gradio event it might run in
    imported it, about 2 s of CPU in each such process)."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.path.insert(0, "tests/support")
        from toy_backends import CountingBackend, registry_with
        from gradio_diffusion_preview import astream, stream
        from gradio_diffusion_preview.run_engine import ENGINE, RunSpec
        spec = RunSpec("counting", {"prompt": "p", "steps": 3},
                       plugins=registry_with(CountingBackend()))
        states = list(ENGINE.states(spec, ENGINE.open()))
        assert states[-1].status == "done", states[-1]
        states = list(stream(CountingBackend(), prompt="p", steps=3))
        assert states[-1].status == "done", states[-1]

        async def last():
            return [state async for state in astream(CountingBackend(), prompt="p", steps=3)][-1]

        assert asyncio.run(last()).status == "done"
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("gradio", "gradio_client"))
        print(loaded)
        assert not loaded, loaded
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_state_of_a_run_says_what_its_backend_can_do_so_a_ui_offers_only_that():
    """The value carries the running backend's cancel and finish-early capabilities (for the
    model run), from the queued states on: the widget hides "Use this preview" where it cannot
    work (a ComfyUI endpoint's run went on to its last step after it)."""

    class NoFinishEarly(CountingBackend):
        id = "counting"
        capabilities = Capabilities(finish_early=False, cancel=False, default_size=(64, 64))

    fields = {"model": "flat", "prompt": "p", "steps": 3}
    for backend, can in ((CountingBackend(), True), (NoFinishEarly(), False)):
        states = list(stream(backend, registry=registry_with(backend), **fields))
        assert states[-1].status == "done"
        said = [state.capabilities.model_dump() for state in states]
        expected = {"cancel": can, "finish_early": can, "cancel_confirms": False}
        assert said == [expected] * len(states)

    backend = CountingBackend(step_seconds=0.01)
    registry, policy = registry_with(backend), one_slot_policy()
    engine = RunEngine(RunRegistry(), wait_tick=5.0)
    long = {**fields, "steps": 400}
    first = engine.states(RunSpec("counting", long, policy, registry), engine.open("a"))
    next(first)
    handle = engine.open("b")
    waiting = engine.states(RunSpec("counting", fields, policy, registry), handle)
    queued = next(waiting)
    assert queued.status == "queued"
    assert queued.capabilities.model_dump() == {
        "cancel": True,
        "finish_early": True,
        "cancel_confirms": False,
    }
    handle.cancel()
    list(waiting)
    first.close()


def test_a_waiting_runs_eta_is_within_half_again_of_its_real_wait_at_every_place():
    """Issue #25: early in a burst the ETA counted a whole run for the one already going (place
    1 was shown 1.4 s for 0.4 s left: 3.5x). Time is a clock the test sets: runs take 1.4 s,
    the running one started 1.0 s ago, so place k really waits 0.4 + (k - 1) * 1.4 s."""
    gate = Gate()
    registry, policy = registry_with(CountingBackend(gate=gate)), one_slot_policy()
    now = [0.0]
    policy.queue.clock = lambda: now[0]
    RUN_DURATIONS.clear()
    RUN_DURATIONS.record("counting", "flat", 1.4)
    engine = RunEngine(RunRegistry(), wait_tick=5.0)
    fields = {"model": "flat", "prompt": "p", "steps": 3}
    streams = [engine.states(RunSpec("counting", fields, policy, registry), engine.open("a"))]
    try:
        assert next(streams[0]).status == "running"
        now[0] = 1.0
        for place in range(1, 9):
            waiting = engine.states(
                RunSpec("counting", fields, policy, registry), engine.open(f"s{place}")
            )
            streams.append(waiting)
            queued = next(waiting)
            assert (queued.status, queued.queue_position) == ("queued", place)
            real = 0.4 + (place - 1) * 1.4
            assert real / 1.5 <= queued.eta <= real * 1.5, (place, queued.eta, real)
    finally:
        gate.open()
        for states in reversed(streams):
            states.close()
        RUN_DURATIONS.clear()
    assert policy.queue.active() == (0, 0)


def test_a_runs_expected_length_follows_its_number_of_steps():
    """A burst of 4-step runs after 20-step ones is expected to take 4 steps' time plus the
    same overhead (loading, decoding, saving): not 20 steps' time, nor a fifth of it."""
    durations = RunDurations()
    durations.record("counting", "flat", 3.0, 20, 0.1)  # 1 s of overhead, 0.1 s a step
    durations.record("counting", "flat", 3.2, 20, 0.11)  # 1 s of overhead, 0.11 s a step
    assert durations.expected("counting", "flat", 4) == pytest.approx(1.0 + 4 * 0.105)
    durations.record("counting", "flat", 6.0, 50)  # steps not timed: scaled as a whole
    assert durations.expected("counting", "other", 4) is None
    untimed = RunDurations()
    untimed.record("counting", "flat", 5.0, 50)
    untimed.record("counting", "flat", 0.5, 4)
    assert untimed.expected("counting", "flat", 4) == pytest.approx(0.45)  # 0.4 and 0.5


def test_a_cold_first_run_does_not_make_the_next_burst_wait_twice_as_long():
    """A process's first run of a model also loads it (here 10 s of 12): a burst right after a
    warm run must expect the warm run's overhead, not the mean of the cold one and the warm one
    (the burst measured by bench/attack.py was shown 2-3 times its real wait)."""
    durations = RunDurations()
    durations.record("counting", "shapes", 12.0, 20, 0.05)  # cold: 11 s of overhead
    durations.record("counting", "shapes", 1.5, 20, 0.05)  # warm: 0.5 s of overhead
    assert durations.expected("counting", "shapes", 20) == pytest.approx(0.5 + 20 * 0.05)


def test_the_eta_in_line_counts_the_slots_tail_after_a_run_is_done():
    """A slot is held a while after its run is done (final images saved and sent); the queue
    learns that tail from the runs it served and counts it for each run ahead."""
    now = [0.0]
    queue = FairQueue(slots=lambda backend: 1, max_waiting=5, clock=lambda: now[0])
    first = queue.join("b", "s1", expected_seconds=1.0)
    assert first.wait(0)
    first.ran_for = 1.0
    now[0] = 1.5  # the slot was held 0.5 s after the run was done
    first.leave()
    running, waiting = queue.join("b", "s2", 1.0), queue.join("b", "s3", 1.0)
    assert running.wait(0)
    assert waiting.position == 1
    assert queue.wait_estimate(waiting, 1.0) == pytest.approx(1.5)
    now[0] = 2.0
    assert queue.wait_estimate(waiting, 1.0) == pytest.approx(1.0)
    running.leave()
    waiting.leave()


def test_a_run_read_to_its_end_leaves_no_orphan_timer_thread_behind():
    """A slotted run's backend arms a timer that frees the slot if no reader ever ends the run;
    a reader that does end it disarms the timer, so a burst of runs leaves no thread per run
    sleeping out its ``ORPHAN_SECONDS``."""
    import threading

    def timers() -> set[threading.Thread]:
        return {thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)}

    before = timers()  # other tests' runs in this process may have left theirs
    registry = registry_with(CountingBackend())
    for _ in range(5):
        states = list(stream("counting", registry=registry, policy=one_slot_policy(),
                             model="flat", prompt="p", steps=2))  # fmt: skip
        assert states[-1].status == "done", states[-1].message
    armed = timers() - before
    for timer in armed:
        timer.join(timeout=5)  # a disarmed timer's thread ends at once
    assert not [timer for timer in armed if timer.is_alive()], "a timer sleeps out its wait"
