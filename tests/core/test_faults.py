"""Faults injected in a test backend under a policy: a raise at a random step, a hang past the
time limit, a stalled or dropped remote, out of memory, a wrong-size or black image. Each ends
only its own run, frees its slot, and the next run works; 100 cancel cycles leave no thread,
no run and no memory behind."""

from __future__ import annotations

import gc
import random
import threading
import time

import numpy as np
import PIL.Image
import psutil
import pytest
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import Backend, Capabilities, Finished, Started, Step, stream
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.run_handles import RUNS

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

TIME_LIMIT = 1.5


class FaultyBackend(Backend):
    """Does what its prompt says: ok, raise, hang, stall, drop, oom, wrong_size, black."""

    id = "faulty"
    display_name = "Faulty (test)"
    location = "local"
    capabilities = Capabilities(any_model=True, default_size=(64, 64), default_steps=6)

    def generate(self, request, control):
        fault = request.prompt
        rng = random.Random(request.seed)
        yield Started(request.steps, "m", [request.seed], request.width, request.height)
        fail_at = rng.randint(1, request.steps)
        for step in range(1, request.steps + 1):
            if control.cancelled:
                return
            if fault == "raise" and step == fail_at:
                raise RuntimeError(f"injected at step {step}")
            if fault == "oom" and step == fail_at:
                raise MemoryError("CUDA out of memory (injected)")
            if fault == "hang":
                time.sleep(TIME_LIMIT * 3)  # ignores cancel, like a stuck kernel
            if fault == "stall":
                control.wait_cancelled(60)  # a remote that never answers
            if fault == "drop":
                return  # a remote that hangs up: no result, no error
            yield Step(step, request.steps, np.zeros((8, 8, 3), np.uint8))
        size = (request.width // 2, request.height) if fault == "wrong_size" else None
        image = PIL.Image.new("RGB", size or (request.width, request.height), 0)
        yield Finished([image], [request.seed])


FAULTS = {
    "raise": ("error", "backend_error"),
    "oom": ("error", "out_of_memory"),
    "hang": ("error", "timeout"),
    "stall": ("error", "timeout"),
    "drop": ("error", "backend_error"),
    "wrong_size": ("done", None),
    "black": ("done", None),
}


@pytest.fixture
def setup():
    registry = registry_with(FaultyBackend(), CountingBackend(step_seconds=0.01))
    policy = Policy(
        catalogue=[
            CatalogueEntry(id="faulty", backend="faulty", model="m"),
            CatalogueEntry(id="flat", backend="counting", model="flat"),
        ],
        limits=Limits(time_limit=TIME_LIMIT),
        max_queue=4,
    )
    return registry, policy


def final_of(backend, registry, policy, **fields):
    return list(stream(backend, registry=registry, policy=policy, **fields))[-1]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_ends_only_its_own_run_and_frees_its_slot(setup, fault):
    registry, policy = setup
    results = {}
    healthy = threading.Thread(
        target=lambda: results.setdefault(
            "healthy", final_of("counting", registry, policy, prompt="a", steps=30)
        )
    )
    healthy.start()
    final = final_of("faulty", registry, policy, prompt=fault, seed=random.randrange(100))
    healthy.join(30)
    status, reason = FAULTS[fault]
    assert (final.status, final.reason) == (status, reason), final.message
    assert results["healthy"].status == "done", results["healthy"].message
    assert policy.queue.active() == (0, 0)
    after = final_of("faulty", registry, policy, prompt="ok", seed=1)
    assert after.status == "done", after.message


def test_a_hung_run_does_not_hold_the_next_one_in_line(setup):
    registry, policy = setup
    first = threading.Thread(
        target=final_of, args=("faulty", registry, policy), kwargs={"prompt": "hang"}
    )
    first.start()
    time.sleep(0.2)
    started = time.monotonic()
    second = final_of("faulty", registry, policy, prompt="ok")
    assert second.status == "done"
    first.join(10)
    # it waited for the first run's time limit, not for the stuck thread (3 x the limit)
    assert time.monotonic() - started < TIME_LIMIT * 3


def live_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("gdp-"))


def wait_for(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.slow
def test_100_cancels_leave_no_thread_run_or_memory_behind(setup):
    registry, policy = setup
    process = psutil.Process()

    def cycle():
        run = stream("counting", registry=registry, policy=policy, prompt="a", steps=50)
        for state in run:
            if state.step >= 2:
                break
        run.close()  # what Gradio does on Stop, job.cancel() and a closed tab

    before = len(RUNS)  # runs other tests' servers may still hold
    for _ in range(10):  # warm up: imports, caches, the encoder
        cycle()
    assert wait_for(lambda: live_threads() == 0)
    gc.collect()
    baseline = process.memory_info().rss
    for _ in range(100):
        cycle()
    assert wait_for(lambda: live_threads() == 0), [t.name for t in threading.enumerate()]
    assert len(RUNS) <= before, "a cancelled run is still registered"
    assert policy.queue.active() == (0, 0)
    gc.collect()
    grown = (process.memory_info().rss - baseline) / 2**20
    assert grown < 20, f"memory grew {grown:.1f} MB over 100 cancels"
