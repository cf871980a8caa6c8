"""ServeRun: one run on a Serve application, its wire events turned back into events.

It asks this process's ``Admission`` for a place (a full application answers ``busy`` here, the
same way on a fresh handle as on a warm one), submits the run through Serve's streaming handle
(``handle.options(stream=True)``), starts a ``RunWatch`` that passes Stop, "finish early" and
the deadline on, and reads the stream: the replica's first message (which replica, and its
backend's description), then the run's events. While no replica has taken the run it shows
``Started`` and ``Status("queued")`` with its place among this process's waiting runs, as the
remote backends do, then ``Status("generating")`` when a replica takes it: its wait ends there,
not at its first step. The ``Started`` shown while it waited cannot know the size of the replica's
previews (the replica's backend chooses it, e.g. 1/8 of the image on the CPU), so it announces
the image's size fitted to ``PREVIEW_MAX_SIDE`` and the replica's previews are resized to it.

A run that Serve refuses while this process's own count says there is room is tried again after
a moment: Serve's router may refuse runs that arrive together even when one of them could have
waited (its own comment in ``router.py``).
"""

from __future__ import annotations

import concurrent.futures
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ...control import RunControl
from ...events import Failed, Finished, GenerationEvent, Started, Status, Step
from ...request import GenerationRequest
from ...serving.wire import from_wire
from ..relayed_previews import fit, resize
from .admission import Admission, Limits
from .watch import RunWatch

RETRY_PAUSE = (0.05, 0.15)
"""Seconds (a random pick between) before a run refused as busy is tried again."""
TRIES = 3
"""How often a run Serve refuses, while this process counts room for it, is sent."""
QUEUE_GRACE = 0.5
"""Seconds a run may take to reach a replica before it is shown as queued (no flash of
"queued" for a run on its way to a free replica)."""
LOOK_SECONDS = 0.1
"""How often a queued run looks at its place."""
PREVIEW_MAX_SIDE = 512
"""The longest side of the previews of a run that waited for a replica (see the module doc)."""


_END = object()
"""What ``next`` gives for a stream that ended before its first message."""


class Refused(Exception):
    """The application is full by this process's own count."""

    def __init__(self, limits: Limits) -> None:
        super().__init__("full")
        self.limits = limits


class ServeRun:
    def __init__(
        self,
        handle: Any,
        signals: Any,
        request: GenerationRequest,
        control: RunControl,
        timeout: float,
        learn: Callable[[dict[str, Any] | None], None],
        admission: Admission | None = None,
        limits: Limits | None = None,
        shown_started: Started | None = None,
        previews: bool = True,
    ) -> None:
        """``shown_started``: the ``Started`` an earlier try showed while the run waited;
        ``previews``: whether the replicas' backend sends step previews."""
        self.handle, self.signals, self.request, self.control = handle, signals, request, control
        self.deadline = time.monotonic() + timeout
        self.learn = learn
        self.admission = admission or Admission()
        self.limits = limits
        self.run_id = uuid.uuid4().hex
        self.replica: str | None = None
        self.reached_replica = False
        self.shown_started = shown_started
        """The ``Started`` shown while the run waited (by this try or an earlier one): the
        replica's own is not shown, and its previews are brought to this one's size."""
        self.previews = previews
        self.shown_queued = False
        """A queued ``Status`` was shown: the replica that takes the run says it has begun."""
        self.watch: RunWatch | None = None

    def _send(self) -> Any:
        response = self.handle.options(stream=True).generate.remote(
            self.request.model_dump(), self.run_id, self.signals
        )
        self.watch = RunWatch(
            response, self.control, self.deadline, self.signals, self.run_id
        ).start()
        return response

    def _first(self, response: Any) -> Iterator[GenerationEvent | tuple[Any]]:
        """Wait for the replica's first message, showing the run as queued meanwhile; yields
        events, then the first message as a 1-tuple. Raises what Serve raised."""
        # Not a `with`: leaving it must not wait for a call that only a cancel will end.
        one = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gdp-ray-first")
        try:
            first = one.submit(next, response, _END)
            said: tuple[int, int] | None = None
            while True:
                try:
                    item = first.result(timeout=QUEUE_GRACE if said is None else LOOK_SECONDS)
                except concurrent.futures.TimeoutError:
                    if self.control.cancelled:
                        return  # the watch cancels the call; the thread ends with it
                    place = self.admission.place(self.run_id) or (1, 1)
                    if self.shown_started is None:
                        self.shown_started = self._started()
                        yield self.shown_started
                    if place != said:
                        said = place
                        self.shown_queued = True
                        yield Status(
                            "queued",
                            "Waiting for a free replica…",
                            position=place[0],
                            queue_size=place[1],
                        )
                    continue
                if item is not _END:
                    yield (item,)
                return
        finally:
            one.shutdown(wait=False)

    def _started(self) -> Started:
        request = self.request
        width, height = request.width or 0, request.height or 0
        size = fit(width, height, PREVIEW_MAX_SIDE) if self.previews and width and height else None
        return Started(
            request.steps,
            request.model or "",
            request.image_seeds(),
            width,
            height,
            request.num_images,
            preview_size=size,
        )

    def _submit(self) -> Iterator[GenerationEvent | tuple[Any]]:
        """Send the run (tried again while Serve refuses it but this process counts room) and
        wait for its first message. Raises ``Refused`` and Serve's and Ray's errors."""
        from ray.serve.exceptions import BackPressureError

        if not self.admission.enter(self.run_id, self.limits):
            assert self.limits is not None
            raise Refused(self.limits)
        for attempt in range(1, TRIES + 1):
            response = self._send()
            try:
                for item in self._first(response):
                    if isinstance(item, tuple):
                        self.reached_replica = True
                        self.admission.at_replica(self.run_id)
                        yield item
                        yield from response
                        return
                    yield item
                return
            except BackPressureError:
                assert self.watch is not None
                self.watch.stop()
                if attempt == TRIES or self.control.wait_cancelled(random.uniform(*RETRY_PAUSE)):
                    raise
        raise AssertionError("unreachable")

    def events(self) -> Iterator[GenerationEvent]:
        """The run's events; raises what the stream raised, except after a cancel."""
        ended = False
        try:
            for item in self._submit():
                if not isinstance(item, tuple | dict):
                    yield item  # Started and Status while queued
                    continue
                item = item[0] if isinstance(item, tuple) else item
                if item.get("event") == "replica":
                    self.replica = item.get("replica")
                    self.learn(item.get("description"))
                    if self.shown_queued:
                        # The wait in Serve's queue ends here, not at the first step: the time
                        # the run shows counts from now (a model load on the replica included).
                        self.shown_queued = False
                        yield Status("generating", "Starting on a replica…")
                    continue
                event = from_wire(item)
                if self.control.cancelled:
                    return
                if isinstance(event, Started) and self.shown_started is not None:
                    continue  # shown while the run waited
                if isinstance(event, Step) and self.control.finish_requested:
                    # Asked to finish: the replica hears it a moment later; show no previews
                    # past the one the person chose, only the final image.
                    continue
                if isinstance(event, Step) and self.shown_started is not None:
                    event = _at_size(event, self.shown_started.preview_size)
                if isinstance(event, Finished):
                    event = replace(event, metadata={**event.metadata, "ray_replica": self.replica})
                ended = isinstance(event, Finished | Failed)
                if ended:
                    # Free the place before the last event goes out: whoever reads it may
                    # start the next run before this generator is closed (the runner closes
                    # it after passing the event on), and must not find the place taken.
                    self.admission.leave(self.run_id)
                yield event
                if ended:
                    return
        except StopIteration:
            return
        finally:
            self.admission.leave(self.run_id)
            if self.watch is not None:
                self.watch.stop()
                if not ended:
                    self.watch.cancel()

    @property
    def timed_out(self) -> bool:
        return self.watch is not None and self.watch.timed_out


def _at_size(step: Step, size: tuple[int, int] | None) -> Step:
    """``step`` with its previews at ``size``, or none when ``size`` is ``None``."""
    if step.preview is None:
        return step
    if size is None:
        return replace(step, preview=None)
    if isinstance(step.preview, list | tuple):
        return replace(step, preview=[resize(image, size) for image in step.preview])
    return replace(step, preview=resize(step.preview, size))
