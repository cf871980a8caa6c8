"""Txt2ImgRun: one generation on the server (txt2img, or img2img for a request with an input
image), followed step by step.

The txt2img (img2img) call blocks for the whole generation (and for the time the job waits
behind other jobs on the server's queue lock), so it runs on a thread of its own (``_Call``)
with our own deadline, while a poller thread (``_Poller``) asks ``/internal/progress`` about
*our* task id (``force_task_id``) and decodes its live previews. The generator only waits on
those two, a few hundredths of a second at a time, so a cancel returns at once whatever the
network does.

- Queued on the server: ``Status("queued", position=i, queue_size=n)`` from ``"In queue: i/n"``.
- Running: a ``Step`` each time the progress fraction, mapped onto our steps, moves on, with the
  newest preview; after the answer, the last step with the final image as its preview.
- Cancel, our deadline, or a dropped connection: the ``Reaper`` interrupts our job once it is the
  one running, never before (an interrupt hits whatever job runs, see ``reaper``).
- Finish early: an interrupt while our job runs; the server answers with the images decoded
  from the current estimate, which become ``Finished(early=True)``.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import PIL.Image

from ...events import Failed, Finished, GenerationEvent, Started, Status, Step
from ..relayed_previews import fit, resize
from ..remote_failure import RemoteFailure
from .protocol import (
    ProgressReport,
    ProtocolError,
    RunSettings,
    Txt2ImgResult,
    checkpoint_stem,
    decode_image,
    edit_steps,
    img2img_payload,
    is_edit,
    parse_txt2img,
    steps_done,
    txt2img_payload,
)
from .reaper import interrupt_if_running

if TYPE_CHECKING:
    from ...control import RunControl
    from ...request import GenerationRequest
    from .backend import A1111Backend

T = TypeVar("T")
WAIT_SLICE = 0.05
"""How long the generator waits at a time before looking at cancel and the deadline again."""


class _Cancelled(Exception):
    pass


class Txt2ImgRun:
    """One run of ``request`` on ``backend``'s server; ``events()`` is the generator."""

    def __init__(
        self, backend: A1111Backend, request: GenerationRequest, control: RunControl
    ) -> None:
        self.backend, self.request, self.control = backend, request, control
        self.client = backend.client
        self.settings = backend.settings
        self.timeout = backend.endpoint.timeout
        self.deadline = time.monotonic() + self.timeout
        self.task_id = f"task({uuid.uuid4().hex})"
        self.edit = is_edit(request)
        self.kind = "img2img" if self.edit else "txt2img"
        self.total = request.steps or 1
        if self.edit:  # the server runs only the steps the strength calls for
            self.total = edit_steps(self.total, request.strength or 0.0)
        self.followed = backend.progress_api is not False
        """Whether the run can follow its task (the server has ``/internal/progress``)."""
        self.previews = self.settings.previews and self.followed
        self.preview_size = (
            fit(request.width, request.height, self.settings.preview_max_side)
            if self.previews
            else None
        )
        self.checkpoint: dict[str, Any] | None = None
        self._first_seen: tuple[float, float] | None = None
        self._last_seen: tuple[float, float] | None = None

    @property
    def rate(self) -> float | None:
        """Our job's progress per second while it ran, from the polls; None before two."""
        if self._first_seen is None or self._last_seen is None:
            return None
        (t0, p0), (t1, p1) = self._first_seen, self._last_seen
        return (p1 - p0) / (t1 - t0) if t1 > t0 and p1 > p0 else None

    def _saw(self, progress: float | None) -> None:
        if progress is None or progress <= 0:
            return
        seen = (time.monotonic(), progress)
        if self._first_seen is None:
            self._first_seen = seen
        self._last_seen = seen

    def events(self) -> Iterator[GenerationEvent]:
        try:
            settings = self._prepare()
        except _Cancelled:
            return
        except RemoteFailure as failure:
            yield failure.as_failed()
            return
        request = self.request
        seeds = [request.seed + n for n in range(request.num_images)]
        yield Started(
            total_steps=self.total,
            model=request.model,
            seeds=seeds,
            width=request.width,
            height=request.height,
            num_images=request.num_images,
            preview_size=self.preview_size,
        )
        payload = (img2img_payload if self.edit else txt2img_payload)(request, settings)
        call = _Call(self.client, self.kind, payload, self._left() + 1.0)
        if not self.followed:
            yield Status("generating", self.backend.no_progress_api_message())
        poller = _Poller(self, call.over)
        try:
            yield from self._follow(call, poller, seeds)
        finally:
            poller.stop()
            if poller.missing and self.followed:  # found out now: --nowebui
                self.backend.learn_progress_api(False)
            if not call.answered.is_set() and self.followed:  # our job may run on
                self.backend.reaper.abandon(self.task_id, call.answered, self.timeout, self.rate)

    # -- before the run ----------------------------------------------------------------------

    def _prepare(self) -> RunSettings:
        """Resolve the checkpoint, sampler and scheduler against the server's lists."""
        options = self.request.options  # typed by A1111Options, checked by validation
        backend = self.backend
        if self.request.model:
            self.checkpoint = self._blocking(lambda: backend.find_checkpoint(self.request.model))
        sampler = options.get("sampler") or self.settings.sampler
        scheduler = options.get("scheduler") or self.settings.scheduler
        saved: dict[str, Any] = {}
        at_polls = True
        if self.previews:  # only settings the server will restore are overridden
            saved = self._blocking(backend.client.saved_options, fallback={})
            at_polls = self._blocking(backend.decodes_previews_at_polls)
        return RunSettings(
            task_id=self.task_id,
            checkpoint=_text(self.checkpoint, "title") or self.request.model,
            sampler=self._blocking(lambda: backend.find_sampler(sampler)) if sampler else None,
            scheduler=(
                self._blocking(lambda: backend.find_scheduler(scheduler)) if scheduler else None
            ),
            previews=self.previews,
            preview_every_n_steps=self.settings.preview_every_n_steps,
            decodes_at_polls=at_polls,
            saved_options=frozenset(saved),
        )

    # -- while it runs -----------------------------------------------------------------------

    def _follow(self, call: _Call, poller: _Poller, seeds: list[int]) -> Iterator[GenerationEvent]:
        control = self.control
        last_step, shown_place, preview = 0, None, None
        was_active = finishing = False
        finish = "not asked"
        while not call.over.is_set():
            if control.cancelled:
                return
            if self._left() <= 0:
                yield self._timed_out(was_active)
                return
            if control.finish_requested and was_active and finish == "not asked":
                try:
                    finish = self._blocking(
                        lambda: interrupt_if_running(self.client, self.task_id, self.rate),
                        fallback="not asked",
                    )
                except _Cancelled:
                    return
                except RemoteFailure as failure:
                    yield failure.as_failed()
                    return
                finishing = finish == "interrupted"
                if finish == "waiting":  # not running after all: ask again when it is
                    finish = "not asked"
            try:
                report, new_preview = poller.reports.get(timeout=WAIT_SLICE)
            except queue.Empty:
                if poller.missing and self.followed:
                    self.followed = False
                    self.backend.learn_progress_api(False)
                    yield Status("generating", self.backend.no_progress_api_message())
                continue
            if new_preview is not None:
                preview = new_preview
            if report.active:
                was_active = True
                self._saw(report.progress)
                step = steps_done(report.progress, self.total, new_preview is not None)
                if step > last_step and not finishing:
                    yield Step(step, self.total, preview)
                    last_step, preview = step, None
            elif report.queued and not was_active:
                place = report.queue_place
                if place != shown_place:
                    shown_place = place
                    yield Status("queued", position=place[0], queue_size=place[1])
        if control.cancelled:
            return
        yield from self._answer(call, seeds, last_step, finishing)

    def _timed_out(self, was_active: bool) -> Failed:
        where = self.client.where
        state = "while generating" if was_active else "while waiting in its queue"
        return Failed(
            f"{where} did not finish this run within {self.timeout:g} s (the endpoint's "
            f"timeout); it was stopped {state}. Fix: try again when the server is less busy, "
            "or raise the endpoint's timeout.",
            "timeout",
        )

    # -- after it -----------------------------------------------------------------------------

    def _answer(
        self, call: _Call, seeds: list[int], last_step: int, early: bool
    ) -> Iterator[GenerationEvent]:
        where = self.client.where
        if call.failure is not None:
            yield call.failure.as_failed()
            return
        try:
            result = parse_txt2img(call.result, self.request.num_images)
        except ProtocolError as error:
            yield Failed(f"{where} answered {self.kind} with {error}.", "remote_error")
            return
        wrong_model = self._wrong_model(result)
        if wrong_model:
            yield Failed(wrong_model, "model_not_found")
            return
        if len(result.images) < self.request.num_images:
            yield Failed(
                f"{where} returned {len(result.images)} of the {self.request.num_images} "
                "images asked for.",
                "remote_error",
            )
            return
        metadata = {
            "endpoint": self.backend.id,
            "task_id": self.task_id,
            "model": result.model_name,
            "sampler": result.info.get("sampler_name"),
            "infotexts": result.info.get("infotexts"),
        }
        seeds = result.seeds or seeds
        if early:
            yield Finished(result.images, seeds, metadata, early=True)
            return
        if last_step < self.total and self.followed:
            final_preview = self._preview_of(result.images[0]) if self.previews else None
            yield Step(self.total, self.total, final_preview)
        yield Finished(result.images, seeds, metadata)

    def _wrong_model(self, result: Txt2ImgResult) -> str | None:
        """A message when the server ran another checkpoint than ours: AUTOMATIC1111 quietly
        drops a checkpoint override it cannot find and uses the loaded one."""
        entry = self.checkpoint
        if entry is None:
            return None
        wanted_hash, ran_hash = _text(entry, "hash"), result.model_hash
        if wanted_hash and ran_hash:
            same = wanted_hash.startswith(ran_hash) or ran_hash.startswith(wanted_hash)
        else:
            wanted = checkpoint_stem(_text(entry, "filename")) or checkpoint_stem(
                (_text(entry, "title") or "").split(" [", 1)[0]
            )
            same = not (wanted and result.model_name) or wanted == result.model_name
        if same:
            return None
        return (
            f"{self.client.where} ran the checkpoint '{result.model_name}' instead of "
            f"'{self.request.model}': it could not load the one asked for (removed, renamed or "
            "broken). Fix: choose a checkpoint the server lists, or refresh its checkpoints."
        )

    def _preview_of(self, image: PIL.Image.Image) -> PIL.Image.Image:
        return resize(image, self.preview_size)

    # -- plumbing -----------------------------------------------------------------------------

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _deadline_failure(self) -> RemoteFailure:
        return RemoteFailure(
            f"{self.client.where} did not answer within the endpoint's timeout "
            f"({self.timeout:g} s).",
            "timeout",
        )

    def _blocking(self, fn: Callable[[], T], fallback: Any = None) -> T:
        """``fn()`` on a thread of its own, so that cancel and the deadline still count while
        the server answers; raises ``_Cancelled``, or ``RemoteFailure`` (timeout). With a
        ``fallback``, a ``RemoteFailure`` of ``fn`` gives that instead."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = fn()
            except BaseException as error:  # handed to the caller
                box["error"] = error
            finally:
                done.set()

        threading.Thread(target=target, name="gdp-a1111-call", daemon=True).start()
        while not done.wait(WAIT_SLICE):
            if self.control.cancelled:
                raise _Cancelled
            if self._left() <= 0:
                raise self._deadline_failure()
        error = box.get("error")
        if isinstance(error, RemoteFailure) and error.reason == "timeout" and self._left() <= 0:
            # the call's own read timeout (the endpoint's too) came first by a hair
            raise self._deadline_failure()
        if isinstance(error, RemoteFailure) and fallback is not None:
            return fallback
        if error is not None:
            raise error
        return box["value"]


class _Call:
    """The blocking ``POST /sdapi/v1/txt2img`` (or ``img2img``: ``kind``) on its own thread;
    ``over`` is set when it
    returned (``result``) or failed (``failure``), ``answered`` only when the server answered
    (then its job is over; a call cut off or timed out says nothing about the job)."""

    def __init__(
        self, client: Any, kind: str, payload: dict[str, Any], read_timeout: float
    ) -> None:
        self.over = threading.Event()
        self.answered = threading.Event()
        self.result: Any = None
        self.failure: RemoteFailure | None = None

        def target() -> None:
            try:
                self.result = getattr(client, kind)(payload, read_timeout)
                self.answered.set()
            except RemoteFailure as failure:
                self.failure = failure
                if failure.status is not None or failure.reason == "remote_error":
                    self.answered.set()
            except Exception as error:  # a bug here must still end the run
                self.failure = RemoteFailure(
                    f"The {kind} call to {client.where} raised {type(error).__name__}: {error}",
                    "backend_error",
                )
            finally:
                self.over.set()

        threading.Thread(target=target, name=f"gdp-a1111-{kind}", daemon=True).start()


class _Poller:
    """Polls ``/internal/progress`` for one task on its own thread; ``reports`` holds
    ``(ProgressReport, preview)`` pairs, ``preview`` being a new decoded preview or None.

    Failed polls are skipped (a progress call can fail now and then: #13225, an answer with NaN
    gives a 500); the txt2img call decides how the run ends. A server without the endpoint
    (404) is not asked again."""

    def __init__(self, run: Txt2ImgRun, call_over: threading.Event) -> None:
        self.reports: queue.Queue[tuple[ProgressReport, PIL.Image.Image | None]] = queue.Queue()
        self.failures = 0
        self.missing = False
        """Set when the server answered 404: it has no ``/internal/progress`` (``--nowebui``)."""
        self._run = run
        self._stop = threading.Event()
        self._call_over = call_over
        threading.Thread(target=self._loop, name="gdp-a1111-progress", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        run = self._run
        last_preview = -1
        interval = run.settings.poll_interval
        while not (self._stop.is_set() or self._call_over.is_set()) and run.followed:
            try:
                report = run.client.progress(run.task_id, last_preview, run.previews)
            except RemoteFailure as failure:
                self.failures += 1
                if failure.status == 404:
                    self.missing = True
                    return
            else:
                preview = None
                preview_id = report.id_live_preview
                fresh = preview_id is not None and preview_id != last_preview
                if report.active and report.live_preview and fresh:
                    last_preview = preview_id
                    try:
                        decoded = decode_image(report.live_preview, "a preview")
                        preview = resize(decoded, run.preview_size)
                    except ProtocolError:
                        preview = None  # one broken preview is skipped, the next one may do
                self.reports.put((report, preview))
            self._stop.wait(interval)


def _text(entry: dict[str, Any] | None, key: str) -> str | None:
    value = entry.get(key) if entry else None
    return value if isinstance(value, str) and value else None
