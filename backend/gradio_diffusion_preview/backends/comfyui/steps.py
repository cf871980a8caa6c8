"""Turns ComfyUI's ``progress`` messages and preview frames into the run's ``Step`` events.

``progress`` is per sampler node (``value`` of ``max``, from 1); a batch runs one sampler per
image, so a sampler's progress counts as its share of the run's steps. The step numbers only
ever go up; a sampler ComfyUI took from its cache reports nothing, and no step is invented for it.

Previews come two ways. A plain preview frame (type 1) carries no ids and follows the
``progress`` message of its step, so that step waits for it a moment (``grace``) before going
out without one; once a step has gone without a frame, later steps do not wait (the server sends
none). A frame with metadata (type 4) names its node and comes *before* its ``progress``
message, so it waits for its step instead.
"""

from __future__ import annotations

import math
import time

from ...events import Step
from ..relayed_previews import resize
from .messages import PreviewFrame

PREVIEW_GRACE = 0.5
"""How long a step waits for its preview frame, in seconds (they come milliseconds apart)."""


class StepTracker:
    """The steps of one run, and the previews paired with them."""

    def __init__(
        self,
        total_steps: int,
        sampler_nodes: list[str],
        preview_size: tuple[int, int] | None,
        grace: float = PREVIEW_GRACE,
    ) -> None:
        self.total_steps = total_steps
        self.sampler_nodes = sampler_nodes
        self.preview_size = preview_size
        self.grace = grace
        self.last = 0
        self.unreadable_previews = 0
        self._pending: tuple[int, float] | None = None  # (step, when it began to wait)
        self._stash: dict[str, PreviewFrame] = {}
        self._plain_frames: bool | None = None  # None: not known yet

    def progress(self, node: str | None, value: float, maximum: float) -> list[Step]:
        """A ``progress`` message: the steps it completes (none, or one)."""
        out = self.flush()
        if node not in self.sampler_nodes or maximum <= 0 or value <= 0:
            return out
        branch = self.sampler_nodes.index(node)
        fraction = (branch + min(value / maximum, 1.0)) / len(self.sampler_nodes)
        step = max(1, min(self.total_steps, math.ceil(fraction * self.total_steps - 1e-9)))
        if step <= self.last:
            return out
        self.last = step
        frame = self._stash.pop(node, None)
        if frame is not None:
            out.append(self._step(step, frame))
        elif self.preview_size is not None and self._plain_frames is not False:
            self._pending = (step, time.monotonic())
        else:
            out.append(Step(step, self.total_steps))
        return out

    def preview(self, frame: PreviewFrame) -> list[Step]:
        """A preview frame (already known to be this run's): the step it completes, if any."""
        if self.preview_size is None:
            return []
        if frame.node_id is not None:
            if frame.node_id in self.sampler_nodes:
                self._stash[frame.node_id] = frame
            return []
        self._plain_frames = True
        if self._pending is None:
            return []  # a frame for a step that already went out
        step, _ = self._pending
        self._pending = None
        return [self._step(step, frame)]

    def flush(self) -> list[Step]:
        """The waiting step, without a preview (its frame is not coming)."""
        if self._pending is None:
            return []
        step, _ = self._pending
        self._pending = None
        if self._plain_frames is None:
            self._plain_frames = False
        return [Step(step, self.total_steps)]

    def expired(self) -> list[Step]:
        """The waiting step, if it has waited out its grace."""
        if self._pending is not None and time.monotonic() - self._pending[1] >= self.grace:
            return self.flush()
        return []

    def wait_time(self, longest: float) -> float:
        """How long the socket may wait for the next frame before ``expired`` is due."""
        if self._pending is None:
            return longest
        return max(0.0, min(longest, self._pending[1] + self.grace - time.monotonic()))

    def _step(self, step: int, frame: PreviewFrame) -> Step:
        image = frame.image()
        if image is None:
            self.unreadable_previews += 1
            return Step(step, self.total_steps)
        return Step(step, self.total_steps, resize(image, self.preview_size))
