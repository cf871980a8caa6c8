"""Compare, in-process with the toy backends: every run streams into its own place, closing stops
them all and leaves nothing behind, a failed run ends only its own place, one-slot backends take
turns and many-slot ones run in parallel, and a compare is one request of its session."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio.context import LocalContext
from toy_backends import CountingBackend, FailingBackend, Gate, registry_with

from gradio_diffusion_preview.compare import (
    CompareRefused,
    CompareRun,
    compare,
    stream_together,
    with_timing,
)
from gradio_diffusion_preview.fair_queue import Busy, FairQueue
from gradio_diffusion_preview.policy import CatalogueEntry, Policy
from gradio_diffusion_preview.run_handles import cancel_run, runs_of_session, stop_session_runs
from gradio_diffusion_preview.state import RunState


def make_policy(slots: int = 1, **overrides) -> Policy:
    entries = [
        CatalogueEntry(id=name, label=f"Flat {name}", backend="counting", model="flat")
        for name in ("a", "b", "c", "d", "e")
    ]
    entries.append(CatalogueEntry(id="broken", backend="failing", model="x"))
    return Policy(catalogue=entries, slots={"counting": slots}, **overrides)


@contextmanager
def in_session(session: str):
    """Code run here acts as if inside a Gradio event of browser session ``session``."""
    token = LocalContext.request.set(SimpleNamespace(session_hash=session))
    try:
        yield
    finally:
        LocalContext.request.reset(token)


def compare_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("compare-run-")]


def until(ticks, painted: int):
    """The compare's first tuple in which the first ``painted`` runs have done 2 steps."""
    return next(states for states in ticks if all(s.step >= 2 for s in states[:painted]))


def run_all(policy, models, registry, **fields):
    fields = {"prompt": "p", "steps": 4, **fields}
    return list(compare(policy, models, registry=registry, **fields))


def test_every_run_streams_into_its_place_with_one_seed_and_its_timing():
    backend = CountingBackend(step_seconds=0.03)
    ticks = run_all(make_policy(slots=3), ["a", "b", "Flat c"], registry_with(backend))
    final = ticks[-1]
    assert [s.model for s in final] == ["a", "b", "c"]
    assert all(s.status == "done" for s in final), [s.message for s in final]
    assert len({s.seeds[0] for s in final}) == 1, "one seed for every model"
    for index in range(3):
        steps = [t[index].step for t in ticks if t[index].status == "running"]
        assert steps and steps == sorted(steps), (index, steps)  # previews, in order
    for state in final:
        assert state.message.startswith("Done in ") and "steps/s" in state.message
    assert backend.steps_run == 12


def test_with_timing_keeps_an_early_finish_note_and_leaves_other_states():
    done = RunState(status="done", elapsed=2.44, steps_per_second=8.31, message="Early.")
    assert with_timing(done).message == "Early. Done in 2.4 s, 8.3 steps/s."
    assert with_timing(RunState(status="done", elapsed=1.0)).message == "Done in 1.0 s."
    running = RunState(status="running", elapsed=1.0)
    assert with_timing(running) is running


@pytest.mark.parametrize(
    "models, problem",
    [
        (["a"], "Choose 2 to 4 different models to compare (1 chosen)"),
        (["a", "a"], "(1 chosen)"),
        (["a", "b", "c", "d", "e"], "(5 chosen)"),
        (["a", "/etc/passwd"], "'<server path>' is not one of this app's models"),
        ("a", "as a list of 2 to 4 names, not str"),
    ],
)
def test_a_bad_choice_of_models_is_refused_naming_the_fix(models, problem):
    with pytest.raises(CompareRefused, match="choose|Choose") as refused:
        run_all(make_policy(), models, registry_with(CountingBackend()))
    assert problem in str(refused.value)


def test_one_slot_runs_take_turns_in_the_order_given_showing_their_place():
    # Each step waits at a gate until a tick has shown the run at the step before: a run that
    # went by between two ticks on a busy machine would otherwise never be seen running.
    gate = Gate()
    backend = CountingBackend(gate=gate)
    ticks, let_through = [], set()
    hang_guard = threading.Timer(120, gate.open)  # only so that a broken test cannot hang
    hang_guard.start()
    try:
        for tick in compare(
            make_policy(slots=1),
            ["a", "b", "c"],
            registry=registry_with(backend),
            prompt="p",
            steps=4,
            min_interval=0,
        ):
            ticks.append(tick)
            for index, state in enumerate(tick):
                seen = (index, state.step)
                if state.status == "running" and state.step < 4 and seen not in let_through:
                    let_through.add(seen)
                    gate.release()
    finally:
        hang_guard.cancel()
    assert all(s.status == "done" for s in ticks[-1])
    running = [tuple(i for i, s in enumerate(t) if s.status == "running") for t in ticks]
    assert max(len(r) for r in running) == 1, "never two runs on a one-slot backend at once"
    order = [r[0] for r in running if r]
    assert sorted(set(order)) == [0, 1, 2] and order == sorted(order), "in the order given"
    first_place = [
        next(t[i].queue_position for t in ticks if t[i].queue_position is not None) for i in (1, 2)
    ]
    assert first_place == [1, 2], "each waited its place in line, in the order given"


def test_many_slot_runs_go_in_parallel():
    backend = CountingBackend(step_seconds=0.02)
    ticks = run_all(make_policy(slots=3), ["a", "b", "c"], registry_with(backend), steps=10)
    assert all(s.status == "done" for s in ticks[-1])
    assert any(all(s.status == "running" and s.step > 0 for s in t) for t in ticks)


def test_a_failed_run_ends_only_its_own_place():
    registry = registry_with(CountingBackend(step_seconds=0.01), FailingBackend())
    with in_session("one-fails"):
        final = run_all(make_policy(), ["broken", "a"], registry)[-1]  # no gradio.Error
    assert final[0].status == "error" and final[0].reason == "remote_error"
    assert final[1].status == "done"


def test_every_run_failed_ends_a_gradio_event_as_an_error():
    policy = make_policy()
    policy.catalogue.append(CatalogueEntry(id="broken2", backend="failing", model="y"))
    with in_session("all-fail"), pytest.raises(gr.Error, match="remote_error"):
        run_all(policy, ["broken", "broken2"], registry_with(FailingBackend()))


def test_closing_stops_every_run_within_a_step_and_leaves_nothing_behind():
    backend = CountingBackend(step_seconds=0.05)
    policy = make_policy(slots=2)
    with in_session("closer"):
        ticks = compare(
            policy, ["a", "b", "c"], registry=registry_with(backend), prompt="p", steps=50
        )
        states = until(ticks, 2)
        assert states[2].status == "queued", "the third waits for a slot"
        assert len(runs_of_session("closer")) == 3, "runs belong to the session, waiting too"
        ticks.close()
    steps_at_close = backend.steps_run
    assert compare_threads() == []
    assert policy.queue.active() == (0, 0), "no slot taken, nobody left in line"
    assert policy.queue._sessions == {}, "the session may run again"
    assert runs_of_session("closer") == []
    time.sleep(0.3)
    assert backend.steps_run == steps_at_close, "no step after the runs were stopped"


def test_a_compare_is_one_request_of_its_session():
    backend = CountingBackend(step_seconds=0.05)
    policy = make_policy(slots=1, runs_per_session=1)
    registry = registry_with(backend)
    with in_session("visitor"):
        ticks = compare(policy, ["a", "b", "c", "d"], registry=registry, prompt="p", steps=50)
        next(ticks)
        # the session's one request is taken: no other run, no second compare
        with pytest.raises(Busy):
            policy.queue.join("counting", "visitor")
        with pytest.raises(gr.Error, match="busy"):
            run_all(policy, ["a", "b"], registry)
        ticks.close()
    with in_session("someone-else"):
        assert all(s.status == "done" for s in run_all(policy, ["a", "b"], registry)[-1])
    with in_session("visitor"):
        assert all(s.status == "done" for s in run_all(policy, ["c", "d"], registry)[-1])
    assert policy.queue._sessions == {}


def test_a_group_holds_at_most_its_size_and_frees_the_session_when_closed():
    queue = FairQueue(slots=lambda backend: 1, runs_per_session=1)
    group = queue.group("s", size=2)
    tickets = [queue.join("x", "s", group=group) for _ in range(2)]
    with pytest.raises(Busy, match="at most 2 runs"):
        queue.join("x", "s", group=group)
    with pytest.raises(Busy):
        queue.group("s", size=2)
    tickets[0].leave()
    tickets.append(queue.join("y", "s", group=group))
    for ticket in tickets:
        ticket.leave()
    group.close()
    group.close()
    assert queue._sessions == {} and queue.active() == (0, 0)
    queue.join("x", "s").leave()


def test_without_a_policy_runs_are_plain_streams():
    registry = registry_with(CountingBackend())
    runs = [CompareRun("counting", {"prompt": "p", "steps": 3, "model": "flat"})] * 2
    final = list(stream_together(runs, registry=registry))[-1]
    assert [s.status for s in final] == ["done", "done"]


def test_a_waiting_run_stops_on_its_own_leaving_the_others():
    backend = CountingBackend(step_seconds=0.02)
    policy = make_policy(slots=1)
    with in_session("panel-stop"):
        ticks = compare(
            policy, ["a", "b", "c"], registry=registry_with(backend), prompt="p", steps=10
        )
        states = next(ticks)
        waiting = states[2].run_id
        assert waiting is not None and states[2].status == "queued"
        assert runs_of_session("panel-stop") == [s.run_id for s in states]  # one id, any phase
        assert not cancel_run(waiting, "another-session"), "only its own session's"
        assert cancel_run(waiting, "panel-stop")
        final = list(ticks)[-1]
    assert [s.status for s in final] == ["done", "done", "cancelled"]
    assert final[2].run_id == waiting
    assert policy.queue.active() == (0, 0) and not cancel_run(waiting)


def test_stop_all_ends_every_run_cancelled_and_the_compare_normally():
    backend = CountingBackend(step_seconds=0.02)
    policy = make_policy(slots=1)
    with in_session("stopper"):
        ticks = compare(
            policy, ["a", "b", "c"], registry=registry_with(backend), prompt="p", steps=50
        )
        until(ticks, 1)
        assert stop_session_runs("another-session") == 0, "only the caller's own runs"
        assert stop_session_runs("stopper") == 3
        final = list(ticks)[-1]  # the compare ends by itself, without gradio.Error
    assert [s.status for s in final] == ["cancelled"] * 3, [s.message for s in final]
    assert policy.queue.active() == (0, 0) and policy.queue._sessions == {}
    assert compare_threads() == []


def test_a_remote_gradio_backend_picks_one_runs_endpoint_over_a_compares():
    from gradio_diffusion_preview.backends.remote_gradio.api import _choose_endpoint

    def endpoint(previews: int) -> dict:
        return {"returns": [{"component": "DiffusionPreview"}] * previews}

    assert _choose_endpoint({"/compare": endpoint(4), "/generate": endpoint(1)}, "x") == (
        "/generate"
    )
    with pytest.raises(Exception, match="several endpoints"):
        _choose_endpoint({"/a": endpoint(1), "/b": endpoint(1)}, "x")


def test_a_chosen_model_that_cannot_run_here_says_why_in_its_panel_at_once():
    from gradio_diffusion_preview.compare_tab import show_panels

    policy = Policy(
        catalogue=[
            CatalogueEntry(id="local", label="Local", backend="diffusers", model="m"),
            CatalogueEntry(id="remote", label="Remote", backend="hf-inference", model="r/m"),
        ]
    )
    columns_and_panels = show_panels(policy, ["local", "remote"])  # HF_HUB_OFFLINE=1 here
    columns, panels = columns_and_panels[:4], columns_and_panels[4:]
    assert [c["visible"] for c in columns] == [True, True, False, False]
    assert [p["label"] for p in panels[:2]] == ["Local", "Remote"]
    ready = panels[0]["value"]  # empty, ready for its model (a late answer keeps its run)
    assert ready.status == "idle" and ready.model == "local" and ready.message is None
    assert panels[2]["value"] is None  # unused
    note = panels[1]["value"]
    assert note.status == "idle" and note.model == "remote"
    assert note.message == "Not available here: this server is offline."  # fix: in the log


def test_the_step_and_size_sliders_offer_what_every_chosen_model_takes():
    from gradio_diffusion_preview.bundled.shapes import model_dir
    from gradio_diffusion_preview.compare_tab import shared_ranges
    from gradio_diffusion_preview.policy import Limits

    shapes = str(model_dir())
    policy = Policy(
        catalogue=[
            CatalogueEntry(id="s1", backend="diffusers", model=shapes),
            CatalogueEntry(id="s2", backend="diffusers", model=shapes, options={"x": 1}),
            CatalogueEntry(id="sdxl", backend="diffusers", model="stabilityai/sdxl-turbo"),
        ],
        limits=Limits(max_steps=40, max_side=512),
    )
    both = shared_ranges(policy, ["s1", "s2"])  # the shapes model: 64 to 128 px, its default 64
    assert (both["width"]["minimum"], both["width"]["maximum"], both["width"]["value"]) == (
        64,
        128,
        64,
    )
    assert (both["steps"]["maximum"], both["steps"]["value"]) == (40, 20)
    # with a turbo model (1 to 4 steps, 512 px): the steps every model takes
    mixed = shared_ranges(policy, ["s1", "sdxl"])
    assert mixed["steps"]["maximum"] == 4 and mixed["steps"]["value"] == 4


class SmallSeeds(CountingBackend):
    """Like a Space whose seed slider stops at 999: a larger seed is refused before the run."""

    id = "small-seeds"
    capabilities = CountingBackend.capabilities.model_copy(update={"seed_range": (0, 999)})


def test_a_shared_random_seed_is_one_every_chosen_model_accepts():
    entries = [
        CatalogueEntry(id="wide", backend="counting", model="flat"),
        CatalogueEntry(id="narrow", backend="small-seeds", model="flat"),
    ]
    policy = Policy(catalogue=entries, slots={"counting": 2, "small-seeds": 2})
    registry = registry_with(CountingBackend(), SmallSeeds())
    for _ in range(10):  # a seed drawn from 2**32 would be refused by "narrow" nearly always
        final = run_all(policy, ["wide", "narrow"], registry, steps=2)[-1]
        assert [s.status for s in final] == ["done", "done"], [s.message for s in final]
        assert final[0].seeds == final[1].seeds and final[0].seeds[0] <= 999
