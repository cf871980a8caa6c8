"""One generation on a ComfyUI server, from opening the socket to the final images.

1. Open a websocket with a fresh client id (ComfyUI routes a prompt's events to the socket of
   the client that submitted it, so ours never shows another client's steps or previews).
2. ``POST /prompt`` with our own ``prompt_id`` and ``extra_data.preview_method`` (the server's
   default makes no previews); ``Started`` once it is accepted.
3. While the prompt waits behind others: ``Status("queued", position, queue_size)`` from
   ``GET /queue``, refreshed when the server broadcasts a queue change.
4. ``progress`` messages and preview frames become ``Step`` events (``steps``); ``executed``
   names the saved images; ``execution_success`` (or ``executing`` with no node, on servers
   without it) ends the run, and the images come from ``GET /view``.

A prompt that ComfyUI takes from its output cache reports no progress and no previews; its
``executed`` messages are replayed and it finishes all the same. A dropped socket is reopened
once with the same client id (the history tells what was missed). Stop, the deadline and any
failure take our prompt off the server: interrupted if it runs, deleted if it waits, and no
other client's prompt is touched.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import PIL.Image

from ...events import Finished, GenerationEvent, Started, Status
from ..relayed_previews import fit
from ..remote_failure import RemoteFailure
from .connection import EventSocket, SocketClosed
from .messages import Ignored, Message, PreviewFrame, Unreadable
from .steps import StepTracker
from .workflow import Plan, builtin_plan

if TYPE_CHECKING:
    from ...control import RunControl
    from ...request import GenerationRequest
    from .backend import ComfyUIBackend

log = logging.getLogger(__name__)

POLL = 0.25
"""The longest the run waits on the socket before checking Stop and the deadline again."""
QUEUE_REFRESH = 0.5
"""The least time between two ``GET /queue`` calls (its answer holds every queued graph)."""
ABANDON_TIMEOUT = 3.0
"""How long taking our prompt off the server may take, on a thread of its own."""
OOM_MARKERS = ("out of memory", "outofmemory", "oom")


class _Done(Exception):
    """The prompt has ended on the server (successfully unless ``failure`` is set)."""

    def __init__(self, failure: RemoteFailure | None = None) -> None:
        super().__init__()
        self.failure = failure


class ComfyRun:
    """Runs one request on the backend's server; ``events()`` yields its events."""

    def __init__(
        self, backend: ComfyUIBackend, request: GenerationRequest, control: RunControl
    ) -> None:
        self.backend, self.request, self.control = backend, request, control
        self.endpoint = backend.endpoint
        self.settings = backend.settings
        self.client = backend.client
        self.client_id = f"gdp-{uuid.uuid4().hex}"
        self.prompt_id = str(uuid.uuid4())
        self.socket = EventSocket(self.endpoint, backend.id, self.client_id)
        self.deadline = time.monotonic() + self.endpoint.timeout
        self.submitted = False
        self.running = False  # our prompt has begun executing
        self.ended = False  # it has ended on the server, or was taken off it
        self.reconnected = False
        self.outputs: dict[str, list[dict[str, Any]]] = {}  # node -> images, in arrival order
        self.cached: set[str] = set()
        self.unreadable = 0
        self.loading_said = False
        self.place_said: tuple[int, int] | None = None
        self.queue_checked = 0.0
        self.queue_stale = False

    # -- the run -------------------------------------------------------------------------

    def events(self) -> Iterator[GenerationEvent]:
        try:
            yield from self._run()
        except RemoteFailure as error:
            yield error.as_failed()
        finally:
            self.socket.close()
            if self.submitted and not self.ended:
                self._abandon()

    def _run(self) -> Iterator[GenerationEvent]:
        request = self.request
        plan = self._plan(self._upload_input(), self._upload_mask())
        self.socket.open(min(self.endpoint.connect_timeout, self._left()))
        self.client.submit(
            plan.graph,
            client_id=self.client_id,
            prompt_id=self.prompt_id,
            extra_data={"preview_method": self.settings.preview_method},
            model_inputs=plan.model_inputs,
            timeout=self._left(),
        )
        self.submitted = True
        size = (
            fit(request.width, request.height, self.settings.preview_max_side)
            if self.settings.previews
            else None
        )
        seeds = list(plan.seeds)
        yield Started(
            total_steps=request.steps,
            model=request.model,
            seeds=seeds,
            width=request.width,
            height=request.height,
            num_images=request.num_images,
            preview_size=size,
        )
        tracker = StepTracker(request.steps, plan.sampler_nodes, size)
        self.queue_stale = True
        try:
            while True:
                if self.control.cancelled:
                    return
                left = self._left()
                if left <= 0:
                    raise self._deadline_passed()
                yield from self._queue_status()
                yield from tracker.expired()
                frame = self._receive(tracker.wait_time(min(POLL, left)))
                if frame is None:
                    continue
                if isinstance(frame, PreviewFrame):
                    if frame.prompt_id in (None, self.prompt_id):
                        yield from tracker.preview(frame)
                elif isinstance(frame, Message):
                    yield from self._message(frame, plan, tracker)
                elif isinstance(frame, Unreadable):
                    self.unreadable += 1
                    log.debug("ComfyUI backend %r ignored %s", self.backend.id, frame.why)
                else:
                    assert isinstance(frame, Ignored)
        except _Done as done:
            self.ended = True
            if self.control.cancelled:
                return
            yield from tracker.flush()
            if done.failure is not None:
                raise done.failure from None
        yield Finished(
            self._images(plan),
            seeds,
            metadata={
                "prompt_id": self.prompt_id,
                "cached": all(node in self.cached for node in plan.sampler_nodes),
                "unreadable_frames": self.unreadable + tracker.unreadable_previews,
            },
        )

    def _upload_input(self) -> str | None:
        """Upload the request's input image at the request's size, as PNG under a name of this
        run's own; the name ``LoadImage`` takes, or None for text-to-image."""
        image = self.request.init_image
        if image is None:
            return None
        size = (self.request.width, self.request.height)
        picture = image.convert("RGB")
        if picture.size != size:  # LoadImage gives the file's size; the request's is wanted
            picture = picture.resize(size, PIL.Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        name = f"{self.settings.filename_prefix}_input_{self.prompt_id}.png"
        return self.client.upload_image(buffer.getvalue(), name, timeout=self._left())

    def _upload_mask(self) -> str | None:
        """Upload the request's mask (white: remade) at the request's size, as a greyscale PNG;
        the name ``LoadImageMask`` takes, or None without a mask."""
        mask = self.request.mask_image
        if mask is None:
            return None
        size = (self.request.width, self.request.height)
        picture = mask.convert("L")
        if picture.size != size:  # as the input: nearest, so the mask stays two-valued
            picture = picture.resize(size, PIL.Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        name = f"{self.settings.filename_prefix}_mask_{self.prompt_id}.png"
        return self.client.upload_image(buffer.getvalue(), name, timeout=self._left())

    def _plan(self, input_image: str | None = None, mask_image: str | None = None) -> Plan:
        sampler = self._choice("sampler", "KSampler", "sampler_name")
        scheduler = self._choice("scheduler", "KSampler", "scheduler")
        workflow = self.settings.workflow
        if workflow is None:
            return builtin_plan(
                self.request,
                sampler or self.settings.sampler,
                scheduler or self.settings.scheduler,
                self.settings.filename_prefix,
                input_image,
                mask_image,
            )
        return workflow.plan(self.request, sampler, scheduler, input_image, mask_image)

    def _choice(self, option: str, class_type: str, input_name: str) -> str | None:
        """A request's sampler or scheduler, checked against the server's list when it can be
        had (otherwise ComfyUI's own validation checks it)."""
        value = self.request.options.get(option)
        if value is None or value == "":
            return None
        workflow = self.settings.workflow
        if workflow is not None and option in workflow.marks:
            ref = workflow.marks[option]
            class_type, input_name = workflow.graph[ref.node]["class_type"], ref.name
        try:
            known = self.backend.choices(class_type, input_name)
        except RemoteFailure:
            known = None
        if known is not None and value not in known:  # a string: ComfyUIOptions typed it
            listed = ", ".join(known) if known else "the server's list"
            raise RemoteFailure(
                f"Backend '{self.backend.id}' cannot run this request: option '{option}' is "
                f"{value!r}. Fix: use one of {listed}.",
                "invalid_request",
            )
        return value

    # -- messages ------------------------------------------------------------------------

    def _message(
        self, message: Message, plan: Plan, tracker: StepTracker
    ) -> Iterator[GenerationEvent]:
        kind, data = message.type, message.data
        if kind == "status":
            self.queue_stale = True
            return
        if kind in ("feature_flags", "progress_state"):
            return  # progress_state repeats progress, per node, on newer servers
        prompt_id = message.prompt_id
        if prompt_id is not None and prompt_id != self.prompt_id:
            return  # not ours (a socket carries only its client's prompts, but be sure)
        if prompt_id is None and not (self.running and kind in ("executing", "progress")):
            return
        if kind == "progress":
            value, maximum = _number(data.get("value")), _number(data.get("max"))
            if value is not None and maximum is not None:
                yield from tracker.progress(_node(data.get("node")), value, maximum)
            return
        yield from tracker.flush()  # any other message: a waiting step's frame is not coming
        if kind == "execution_start":
            self.running = True
        elif kind == "execution_cached":
            self.running = True
            nodes = data.get("nodes")
            if isinstance(nodes, list):
                self.cached.update(str(node) for node in nodes if isinstance(node, str | int))
        elif kind == "executing":
            self.running = True
            node = data.get("node")
            if node is None:  # the prompt is done (servers without execution_success)
                outcome = self._history_outcome() if self.reconnected else None
                raise _Done(outcome if isinstance(outcome, RemoteFailure) else None)
            if str(node) in plan.loader_nodes and not self.loading_said:
                self.loading_said = True
                yield Status("loading", "ComfyUI is loading the model…")
        elif kind == "executed":
            self._collect(data)
        elif kind == "execution_success":
            raise _Done()
        elif kind == "execution_error":
            raise _Done(self._execution_error(data))
        elif kind == "execution_interrupted":
            raise _Done(
                RemoteFailure(
                    f"The ComfyUI server of backend '{self.backend.id}' interrupted this run "
                    f"at node {data.get('node_id')} ({data.get('node_type')}): someone stopped "
                    "it on the server. Fix: try again.",
                    "remote_error",
                )
            )

    def _collect(self, data: dict[str, Any]) -> None:
        node, output = data.get("node"), data.get("output")
        images = output.get("images") if isinstance(output, dict) else None
        if node is None or not isinstance(images, list):
            return
        good = [
            ref for ref in images if isinstance(ref, dict) and isinstance(ref.get("filename"), str)
        ]
        if good:
            self.outputs[str(node)] = good

    def _execution_error(self, data: dict[str, Any]) -> RemoteFailure:
        text = str(data.get("exception_message") or "").strip() or "no message"
        kind = str(data.get("exception_type") or "")
        where = f"node {data.get('node_id')} ({data.get('node_type')})"
        if any(marker in f"{kind} {text}".lower() for marker in OOM_MARKERS):
            return RemoteFailure(
                f"The ComfyUI server of backend '{self.backend.id}' ran out of memory at "
                f"{where}: {text.splitlines()[0]}. Fix: try a smaller size or batch.",
                "out_of_memory",
            )
        return RemoteFailure(
            f"The ComfyUI server of backend '{self.backend.id}' failed at {where}: "
            f"{kind + ': ' if kind else ''}{text}",
            "remote_error",
        )

    # -- the socket, the queue, the deadline ---------------------------------------------

    def _receive(self, timeout: float):
        try:
            return self.socket.receive(timeout)
        except SocketClosed:
            if self.reconnected:
                raise RemoteFailure(
                    f"Lost the connection to the ComfyUI server of backend "
                    f"'{self.backend.id}' twice during the run. Fix: check the server and the "
                    "network, then try again.",
                    "unavailable",
                ) from None
            self.reconnected = True
            log.info("ComfyUI backend %r: socket dropped, reconnecting", self.backend.id)
            try:
                self.socket.open(min(self.endpoint.connect_timeout, max(0.1, self._left())))
            except RemoteFailure as error:
                raise RemoteFailure(
                    f"Lost the connection to the ComfyUI server of backend '{self.backend.id}' "
                    f"mid-run, and reconnecting failed: {error}",
                    "unavailable",
                ) from None
            self.queue_stale = True
            outcome = self._history_outcome()
            if outcome is _PENDING:
                return None
        raise _Done(outcome)

    def _history_outcome(self) -> RemoteFailure | None | object:
        """What the history says of our prompt: None (it succeeded; its outputs are kept), a
        ``RemoteFailure`` (it failed), or ``_PENDING`` (it has not ended)."""
        entry = self.client.history(self.prompt_id, timeout=self._left())
        if entry is None:
            return _PENDING
        outputs = entry.get("outputs")
        if isinstance(outputs, dict):
            for node, output in outputs.items():
                self._collect({"node": node, "output": output})
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str", "success") == "success":
            return None
        for event, data in status.get("messages") or []:
            if event == "execution_error" and isinstance(data, dict):
                return self._execution_error(data)
            if event == "execution_interrupted":
                return RemoteFailure(
                    f"The ComfyUI server of backend '{self.backend.id}' interrupted this run.",
                    "remote_error",
                )
        return RemoteFailure(
            f"The ComfyUI server of backend '{self.backend.id}' reports that the run failed.",
            "remote_error",
        )

    def _queue_status(self) -> Iterator[GenerationEvent]:
        """``Status("queued")`` while our prompt waits behind others, from ``GET /queue``."""
        if self.running or not self.queue_stale:
            return
        now = time.monotonic()
        if now - self.queue_checked < QUEUE_REFRESH:
            return
        self.queue_checked, self.queue_stale = now, False
        try:
            place = self.client.queue_place(self.prompt_id, timeout=min(5.0, self._left()))
        except RemoteFailure as error:  # the position is a nicety; the socket tells the rest
            log.info("ComfyUI backend %r: no queue position: %s", self.backend.id, error)
            return
        if place.running:
            return
        if place.pending_ahead is None:
            if self._history_outcome() is _PENDING:
                raise RemoteFailure(
                    f"Our prompt left the queue of the ComfyUI server of backend "
                    f"'{self.backend.id}' without running: someone cleared or edited the "
                    "queue. Fix: try again.",
                    "remote_error",
                )
            return  # it ran; its messages are on their way
        if place.pending_ahead == 0 and place.others_running == 0:
            return  # next, with nothing running: about to start
        said = (place.pending_ahead + 1, place.pending)
        if said != self.place_said:
            self.place_said = said
            ahead = place.pending_ahead + place.others_running
            yield Status(
                "queued",
                f"Waiting for {ahead} prompt{'s' if ahead != 1 else ''} ahead on ComfyUI…",
                position=said[0],
                queue_size=said[1],
            )

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _deadline_passed(self) -> RemoteFailure:
        limit = self.endpoint.timeout
        if not self.running:
            return RemoteFailure(
                f"The run waited in the ComfyUI queue of backend '{self.backend.id}' for "
                f"{limit:g} s without starting (the endpoint's timeout) and was taken off it. "
                "Fix: try again later, or raise the endpoint's timeout.",
                "busy",
            )
        return RemoteFailure(
            f"The ComfyUI server of backend '{self.backend.id}' did not finish within {limit:g} s "
            "(the endpoint's timeout); the run was interrupted. Fix: check the server (it may be "
            "stuck), or raise the endpoint's timeout.",
            "timeout",
        )

    # -- the end -------------------------------------------------------------------------

    def _images(self, plan: Plan):
        if plan.output_nodes is not None:
            nodes = plan.output_nodes
        elif self.settings.output_node:
            nodes = [self.settings.output_node]
        else:
            saved = [n for n, refs in self.outputs.items() if refs[0].get("type") != "temp"]
            nodes = saved[-1:] or list(self.outputs)[-1:]
        missing = [node for node in nodes if node not in self.outputs]
        if missing and not self.reconnected:
            self._history_outcome()  # an executed message lost or garbled: ask the history
        refs = [ref for node in nodes for ref in self.outputs.get(node, [])]
        if not refs or any(node not in self.outputs for node in nodes):
            raise RemoteFailure(
                f"The ComfyUI server of backend '{self.backend.id}' finished the run but "
                "reported no saved image. Fix: check that the workflow ends in a SaveImage node "
                "(or set the endpoint's output_node).",
                "remote_error",
            )
        return [self.client.image(ref, timeout=max(1.0, self._left())) for ref in refs]

    def _abandon(self) -> None:
        """Take our prompt off the server (on a thread: Stop returns at once)."""
        self.ended = True
        running = self.running
        threading.Thread(
            target=_take_off,
            args=(self.client, self.prompt_id, running, self.backend.id),
            name=f"gdp-comfyui-stop-{self.prompt_id[:8]}",
            daemon=True,
        ).start()


_PENDING = object()


def _take_off(client, prompt_id: str, running: bool, backend_id: str) -> None:
    """Interrupt our prompt if it runs, or delete it if it waits (and interrupt it if it began
    in between). Only ever by its id: no other client's prompt is touched."""
    try:
        if not running:
            client.delete(prompt_id, timeout=ABANDON_TIMEOUT)
            running = client.queue_place(prompt_id, timeout=ABANDON_TIMEOUT).running
        if running:
            client.interrupt(prompt_id, timeout=ABANDON_TIMEOUT)
    except RemoteFailure as error:
        log.warning("ComfyUI backend %r could not stop prompt %s: %s", backend_id, prompt_id, error)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _node(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
