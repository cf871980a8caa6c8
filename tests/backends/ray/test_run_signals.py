"""RunSignals, the actor that carries "finish early" to a Ray replica, driven directly on an
event loop: an async actor runs its calls in no fixed order, so every order of ``wait``,
``finish`` and ``forget`` must end with the wait answered and nothing kept."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gradio_diffusion_preview.serving import signals as signals_module
from gradio_diffusion_preview.serving.signals import RunSignals


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


async def in_order(signals: RunSignals, calls: tuple[str, ...]) -> bool | None:
    """Runs the calls for one run id in this order; ``wait``'s answer (None: never answered
    while the other calls ran)."""
    waiting = None
    for call in calls:
        if call == "wait":
            waiting = asyncio.ensure_future(signals.wait("run-1"))
        else:
            await getattr(signals, call)("run-1")
        await asyncio.sleep(0)  # a call runs (and a wait it woke answers) before the next
    if waiting is None:
        return None
    done, _ = await asyncio.wait({waiting}, timeout=1)
    if not done:
        waiting.cancel()
        return None
    return waiting.result()


@pytest.mark.parametrize(
    "calls",
    # the caller's and the replica's forget are alike: each order once
    sorted(set(itertools.permutations(("wait", "finish", "forget", "forget")))),
    ids="-".join,
)
def test_every_order_of_the_calls_answers_the_wait_and_keeps_nothing(calls):
    signals = RunSignals()
    answer = run(in_order(signals, calls))
    # a wait made and finished before the run ended says finish; any other says the run ended
    ended = calls.index("forget")
    assert answer is (calls.index("wait") < ended and calls.index("finish") < ended), calls
    assert run(signals.pending()) == 0, calls


def test_a_wait_that_runs_after_its_runs_end_is_answered_at_once():
    # the failure this guards: a run refused at once, its forget run before its wait, which
    # then waited for ever (and pending() never went back to 0)
    signals = RunSignals()
    run(signals.forget("run-1"))
    assert run(signals.wait("run-1")) is False
    run(signals.finish("run-1"))  # the caller's late "Use this preview"
    assert run(signals.pending()) == 0


def test_only_the_latest_ended_runs_are_remembered(monkeypatch):
    monkeypatch.setattr(signals_module, "ENDED_KEPT", 3)
    signals = RunSignals()
    for number in range(5):
        run(signals.forget(f"run-{number}"))
    run(signals.finish("run-2"))  # still remembered as ended: dropped
    assert run(signals.pending()) == 0
    run(signals.finish("run-1"))  # forgotten long ago: taken as a run that has not started
    assert run(signals.pending()) == 2
