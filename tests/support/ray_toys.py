"""A test backend for the Ray Serve tests, as a plugin module the replicas load (``plugins``).

``ray-counting`` makes a flat-colour image over its steps, like ``toy_backends.CountingBackend``,
and, given ``options.tag``, reports every step it makes, the replica it ran on and when it
ended to the ``StepLog`` actor, so the tests count steps on the replica side. ``options.delay``
is the seconds per step; ``options.hold`` (with a tag) holds the run before each of its steps 2 to
``hold + 1`` until the test lets it on (``StepLog.let_on``), so a test that must see a page paint
several previews does not depend on the page keeping up; ``options.crash_at`` makes the
replica's process exit at that step, ``options.crash_after`` (a tag) at its first step after the
run so tagged has made one.
``steps_run`` counts the steps of every run, for tests that host it without Serve.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
import PIL.Image

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    Finished,
    ModelInfo,
    Started,
    Step,
    hookimpl,
)

NAMESPACE = "gdp-tests"
STEP_LOG = "gdp-step-log"
HOLD_CEILING = 120.0
"""Seconds a held run waits to be let on (a bound only so that a broken test cannot hang)."""


async def within(awaitable, timeout: float) -> bool:
    """Whether ``awaitable`` finished within ``timeout`` seconds."""
    try:
        await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        return False
    return True


class StepLog:
    """An async actor, named ``STEP_LOG`` in ``NAMESPACE``: steps, replica and end per tag."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}
        self.replicas: dict[str, str] = {}
        self.ends: dict[str, asyncio.Event] = {}
        self.let: dict[str, asyncio.Semaphore] = {}

    def _let(self, tag: str) -> asyncio.Semaphore:
        return self.let.setdefault(tag, asyncio.Semaphore(0))

    async def let_on(self, tag: str) -> None:
        """Let the run so tagged make its next held step."""
        self._let(tag).release()

    async def wait_let_on(self, tag: str, timeout: float) -> bool:
        return await within(self._let(tag).acquire(), timeout)

    def _end(self, tag: str) -> asyncio.Event:
        return self.ends.setdefault(tag, asyncio.Event())

    async def step(self, tag: str, replica: str) -> None:
        self.steps[tag] = self.steps.get(tag, 0) + 1
        self.replicas[tag] = replica

    async def started(self, tag: str, replica: str) -> None:
        self.replicas[tag] = replica

    async def end(self, tag: str) -> None:
        self._end(tag).set()

    async def wait_ended(self, tag: str, timeout: float) -> bool:
        return await within(self._end(tag).wait(), timeout)

    async def steps_of(self, tag: str) -> int:
        return self.steps.get(tag, 0)

    async def replica_of(self, tag: str) -> str | None:
        return self.replicas.get(tag)


class ReplicaCountingBackend(Backend):
    id = "ray-counting"
    display_name = "Counting on a replica (test)"
    location = "local"
    capabilities = Capabilities(
        finish_early=True,
        default_size=(64, 64),
        steps_range=(1, 500),
        options={
            "tag": "report steps to the StepLog actor under this tag",
            "delay": "seconds per step",
            "hold": "hold the run before steps 2 to hold + 1 until the test lets it on",
            "crash_at": "exit the replica's process at this step",
            "crash_after": "exit the replica's process once the run of this tag has a step",
        },
    )

    def __init__(self) -> None:
        self.steps_run = 0

    def models(self):
        return [ModelInfo(id="flat", name="Flat colour")]

    def generate(self, request, control):
        options = request.options
        tag, delay = options.get("tag"), float(options.get("delay", 0.0))
        log = replica = None
        if tag:
            import ray
            from ray import serve

            log = ray.get_actor(STEP_LOG, namespace=NAMESPACE)
            replica = serve.get_replica_context().replica_id.to_full_id_str()
            ray.get(log.started.remote(tag, replica))
        seeds = [request.seed + i for i in range(request.num_images)]
        size = (request.width, request.height)
        try:
            yield Started(request.steps, request.model, seeds, *size, request.num_images, (16, 16))
            step = 0
            for step in range(1, request.steps + 1):
                if control.cancelled or control.wait_cancelled(delay):
                    return
                held = log is not None and 1 < step <= 1 + int(options.get("hold", 0))
                if held and not ray.get(log.wait_let_on.remote(tag, HOLD_CEILING)):
                    raise RuntimeError(f"the test never let run {tag} on to step {step}")
                if options.get("crash_at") == step:
                    os._exit(1)
                after = options.get("crash_after")
                if after and log is not None and ray.get(log.steps_of.remote(after)):
                    os._exit(1)
                self.steps_run += 1
                if log is not None:
                    ray.get(log.step.remote(tag, replica))
                yield Step(step, request.steps, np.full((16, 16, 3), step * 37 % 256, np.uint8))
                if control.finish_requested:
                    break
            images = [PIL.Image.new("RGB", size, (step % 256, 90, 200)) for _ in seeds]
            yield Finished(images, seeds, early=step < request.steps)
        finally:
            if log is not None:
                log.end.remote(tag)


@hookimpl
def register_backends(register):
    register(ReplicaCountingBackend())
