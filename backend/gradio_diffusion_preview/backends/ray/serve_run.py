"""ServeRun: one run on a Serve application, its wire events turned back into events.

It submits the run through Serve's streaming handle (``handle.options(stream=True)``), starts a
``RunWatch`` that passes Stop, "finish early" and the deadline on, and reads the stream: the
replica's first message (which replica, and its backend's description), then the run's events.
A run that Serve refuses because its queue looks full is tried once more after a moment: Serve's
router may refuse requests that arrive together even when one of them could have waited (its own
comment in ``router.py``), and a truly full queue refuses the second try too.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ...control import RunControl
from ...events import Failed, Finished, GenerationEvent, Step
from ...request import GenerationRequest
from ...serving.wire import from_wire
from .watch import RunWatch

RETRY_PAUSE = (0.05, 0.15)
"""Seconds (a random pick between) before a run refused as busy is tried again, once."""


class ServeRun:
    def __init__(
        self,
        handle: Any,
        signals: Any,
        request: GenerationRequest,
        control: RunControl,
        timeout: float,
        learn: Callable[[dict[str, Any] | None], None],
    ) -> None:
        self.handle, self.signals, self.request, self.control = handle, signals, request, control
        self.deadline = time.monotonic() + timeout
        self.learn = learn
        self.run_id = uuid.uuid4().hex
        self.replica: str | None = None
        self.watch: RunWatch | None = None

    def _submit(self) -> Iterator[Any]:
        """Submit the run and wait for its first message; one more try if refused as busy.
        Raises Serve's and Ray's errors."""
        from ray.serve.exceptions import BackPressureError

        for attempt in (1, 2):
            response = self.handle.options(stream=True).generate.remote(
                self.request.model_dump(), self.run_id, self.signals
            )
            self.watch = RunWatch(
                response, self.control, self.deadline, self.signals, self.run_id
            ).start()
            try:
                first = next(response)
            except BackPressureError:
                self.watch.stop()
                if attempt == 2 or self.control.wait_cancelled(random.uniform(*RETRY_PAUSE)):
                    raise
                continue
            return _chain(first, response)
        raise AssertionError("unreachable")

    def events(self) -> Iterator[GenerationEvent]:
        """The run's events; raises what the stream raised, except after a cancel."""
        ended = False
        try:
            for item in self._submit():
                if item.get("event") == "replica":
                    self.replica = item.get("replica")
                    self.learn(item.get("description"))
                    continue
                event = from_wire(item)
                if self.control.cancelled:
                    return
                if isinstance(event, Step) and self.control.finish_requested:
                    # Asked to finish: the replica hears it a moment later; show no previews
                    # past the one the person chose, only the final image.
                    continue
                if isinstance(event, Finished):
                    event = replace(event, metadata={**event.metadata, "ray_replica": self.replica})
                ended = isinstance(event, Finished | Failed)
                yield event
                if ended:
                    return
        except StopIteration:
            return
        finally:
            if self.watch is not None:
                self.watch.stop()
                if not ended:
                    self.watch.cancel()

    @property
    def timed_out(self) -> bool:
        return self.watch is not None and self.watch.timed_out


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
