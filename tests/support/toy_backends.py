"""Small real backends for testing the component and the glue without a model."""

from __future__ import annotations

import threading
import time

import numpy as np
import PIL.Image

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    Failed,
    Finished,
    ModelInfo,
    Registry,
    Started,
    Status,
    Step,
    hookimpl,
)


class Gate:
    """Steps that a test lets through, instead of steps that take a while: a backend waits at
    the gate before each step (and gives up at once when its run is cancelled); the test
    releases steps one by one, or opens the gate for all. A test that must see a run still
    going when it acts holds it at the gate, rather than hoping the run is slow enough."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._permits = 0
        self._open = False

    def release(self, steps: int = 1) -> None:
        with self._cond:
            self._permits += steps
            self._cond.notify_all()

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def wait(self, control) -> bool:
        """Wait for a step to be let through: True to run it, False when the run is cancelled.
        A run asked to finish early runs its next step without waiting (then finishes)."""
        with self._cond:
            while not (self._open or self._permits):
                if control.cancelled:
                    return False
                if control.finish_requested:
                    return True
                self._cond.wait(0.02)
            if not self._open:
                self._permits -= 1
            return True


class CountingBackend(Backend):
    """Makes a flat-colour image; each step's preview is a different shade. Counts its steps,
    and the runs that have ended (however they ended). Each step takes ``step_seconds``, or
    waits at ``gate`` (``Gate``) for the test to let it through."""

    id = "counting"
    display_name = "Counting (test)"
    location = "local"
    capabilities = Capabilities(finish_early=True, default_size=(64, 64), steps_range=(1, 500))

    def __init__(self, step_seconds: float = 0.0, gate: Gate | None = None) -> None:
        self.step_seconds = step_seconds
        self.gate = gate
        self.steps_run = 0
        self.runs_ended = 0

    def models(self):
        return [ModelInfo(id="flat", name="Flat colour")]

    def generate(self, request, control):
        try:
            yield from self._generate(request, control)
        finally:
            self.runs_ended += 1

    def _generate(self, request, control):
        yield Started(
            request.steps,
            request.model,
            [request.seed + i for i in range(request.num_images)],
            request.width,
            request.height,
            request.num_images,
            preview_size=(16, 16),
        )
        for step in range(1, request.steps + 1):
            if control.cancelled:
                return
            if self.gate is not None and not self.gate.wait(control):
                return
            if self.step_seconds:
                time.sleep(self.step_seconds)
            self.steps_run += 1
            shade = (step * 37) % 256
            yield Step(step, request.steps, np.full((16, 16, 3), shade, np.uint8))
            if control.finish_requested:
                break
        images = [
            PIL.Image.new("RGB", (request.width, request.height), (step % 256, 90, 200))
            for _ in range(request.num_images)
        ]
        seeds = [request.seed + i for i in range(request.num_images)]
        yield Finished(images, seeds, early=step < request.steps)


class FailingBackend(Backend):
    """Reports a failure after one step, as the contract asks."""

    id = "failing"
    display_name = "Failing (test)"
    location = "remote"
    capabilities = Capabilities(any_model=True)

    def generate(self, request, control):
        yield Started(
            request.steps, request.model or "", [request.seed], request.width, request.height
        )
        yield Step(1, request.steps)
        yield Failed("The remote service answered 503. Fix: try again later.", "remote_error")


class RaisingBackend(Backend):
    """Breaks the contract by raising: the glue must turn that into an error state."""

    id = "raising"
    display_name = "Raising (test)"
    location = "local"
    capabilities = Capabilities(any_model=True)

    def generate(self, request, control):
        yield Started(request.steps, "x", [request.seed], request.width, request.height)
        raise RuntimeError("boom")


class WaitingBackend(Backend):
    """Like a remote image API: no steps, only Status events while it waits, then the image.

    ``waits`` is a list of ``(Status, seconds)``; each status is yielded, then the backend waits
    that long (waking at once on cancel), as a backend polling a service would. With a ``gate``
    it waits at the gate instead, so a test moves it from one status to the next itself.
    """

    id = "waiting"
    display_name = "Waiting (test)"
    location = "remote"
    capabilities = Capabilities(
        step_events=False, step_previews=False, default_size=(64, 64), any_model=True
    )

    def __init__(self, waits=None, failure: Failed | None = None, gate: Gate | None = None) -> None:
        self.waits = waits or [(Status("generating"), 0.05)]
        self.failure = failure
        self.gate = gate
        self.returned = False
        self.cut_short = False  # a wait ended by the cancel, not by its time

    def models(self):
        return [ModelInfo(id="m")]

    def generate(self, request, control):
        try:
            yield Started(
                request.steps, request.model or "m", [request.seed], request.width, request.height
            )
            for status, seconds in self.waits:
                yield status
                waited = (
                    self.gate.wait(control) if self.gate else not control.wait_cancelled(seconds)
                )
                if not waited or control.cancelled:
                    self.cut_short = True
                    return
            if self.failure is not None:
                yield self.failure
                return
            image = PIL.Image.new("RGB", (request.width, request.height), (10, 200, 30))
            yield Finished([image], [request.seed])
        finally:
            self.returned = True


class BatchPreviewBackend(CountingBackend):
    """Previews every image of a batch on its own, each a different shade."""

    id = "batch-preview"

    def generate(self, request, control):
        for event in super().generate(request, control):
            if isinstance(event, Step):
                tiles = [
                    np.full((16, 16, 3), (event.step * 20 + 60 * index) % 256, np.uint8)
                    for index in range(request.num_images)
                ]
                event = Step(event.step, event.total_steps, tiles)
            yield event


class BadPreviewBackend(CountingBackend):
    """Sends float arrays as previews from step 3: a plugin bug the glue must contain."""

    id = "bad-preview"

    def generate(self, request, control):
        for event in super().generate(request, control):
            if isinstance(event, Step) and event.step >= 3:
                event = Step(event.step, event.total_steps, np.zeros((16, 16, 3), np.float64))
            yield event


def registry_with(*backends: Backend) -> Registry:
    """A registry holding just these backends, registered through a real plugin."""

    class TestPlugin:
        @hookimpl
        def register_backends(self, register):
            for backend in backends:
                register(backend)

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(TestPlugin(), "test-plugin")
    return registry
