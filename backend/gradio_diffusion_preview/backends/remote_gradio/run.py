"""One run on a remote Gradio app: submit, follow the job, relay what it says, stop it on cancel.

The job is followed by polling (``job.done()``, ``job.outputs()[seen:]``, ``job.status()``) on our
own clock, never by iterating it: ``for value in job`` spins forever when the remote dies or the
job is cancelled, and never raises. Once cancelled, whatever the job raises is ignored (it
raises odd types then). The remote job is cancelled (``job.cancel()``, on a thread of its own, as
it posts to the app) whenever the run ends before the remote did: Stop, a closed tab, the
deadline, a bad value.

A ``DiffusionPreview`` endpoint (mode "preview") streams the remote run's own states: each new
step is relayed as a ``Step`` (with its preview decoded from the data URL, only for the newest
value of a burst), a waiting phase as ``Status``, and the final state as ``Finished`` (its images
fetched) or ``Failed`` (the remote's reason and retry_after carried over). An image endpoint
(mode "image") reports no steps: ``Status`` while queued and generating, then the image.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...endpoints import public_url
from ...events import (
    FAILURE_REASONS,
    PHASES,
    Failed,
    Finished,
    GenerationEvent,
    Started,
    Status,
    Step,
)
from ..relayed_previews import fit, resize
from ..remote_failure import RemoteFailure
from .failures import classify, describe, scrubbed, where_of
from .values import decode_data_url, ends_run, final_images

if TYPE_CHECKING:
    from gradio_client import Client
    from gradio_client.client import Job
    from gradio_client.utils import StatusUpdate

    from ...control import RunControl
    from ...request import GenerationRequest
    from .backend import RemoteGradioBackend
    from .connection import Session

POLL_SECONDS = 0.05
"""How often the job is looked at; gradio_client's own reader polls every 50 ms too."""
STOP_WAIT_SECONDS = 10.0
"""How long a stopped run's client waits for the remote to confirm before it is dropped."""
QUEUE_NOTICE_SECONDS = 0.5
"""A run next in the remote queue is shown as queued only once it has waited this long, so an
idle remote does not flash "queued" for a few milliseconds."""


class RemoteRun:
    """Runs ``request`` on the backend's remote app; ``events()`` is the backend's generate."""

    def __init__(
        self, backend: RemoteGradioBackend, request: GenerationRequest, control: RunControl
    ) -> None:
        self.backend, self.request, self.control = backend, request, control
        self.seeds: list[int] = []
        self.last_step = 0
        self.remote_over = False
        self.remote_run_id: str | None = None
        self.finish_sent = False
        self.status_key: tuple | None = None

    def events(self) -> Iterator[GenerationEvent]:
        try:
            session = self.backend.session()
            client = session.lease()
        except RemoteFailure as failure:
            yield failure.as_failed()
            return
        upload = _input_file(self.request, session.api)
        try:
            image_file = None if upload is None else _handle_file(upload)
            job = client.submit(
                *session.api.arguments(self.request, image_file), api_name=session.api.api_name
            )
        except Exception as error:
            session.release(client, reusable=False)
            self.backend.forget_session(session)
            _remove(upload)
            yield self._failure(error).as_failed()
            return
        self.session, self.client, self.job = session, client, job
        self.seeds = self._seeds_sent()
        lost = False
        try:
            yield self._started()
            if self.request.prompt and not session.api.takes_prompt:
                yield Status(
                    "generating",
                    f"The Gradio app {session.where} takes no prompt on {session.api.api_name}: "
                    "the prompt is not sent.",
                )
            try:
                yield from self._follow()
            except Exception as error:  # a bad value, a file that would not fetch
                failure = self._failure(error)
                lost = failure.reason in ("unavailable", "unauthorized")
                yield failure.as_failed()
        finally:
            _remove(upload)
            if lost:
                session.release(client, reusable=False)
                self.backend.forget_session(session)
            elif self.remote_over:
                session.release(client)
            else:
                _stop_soon(session, client, job, self.remote_run_id)

    def _seeds_sent(self) -> list[int]:
        """The seed of each image, as far as this side knows before the run: a DiffusionPreview
        app's batch takes seed, seed+1, ...; an image app gets one seed for all its images."""
        seed, count, api = self.request.seed, self.request.num_images, self.session.api
        if seed is None or "seed" not in api.inputs:
            return []
        if api.mode == "preview":
            return [(seed + i) % 2**32 for i in range(count)]
        return [seed] * count

    def _failure(self, error: BaseException) -> RemoteFailure:
        """The failure for ``error``, without the endpoint's address or secrets."""
        return scrubbed(classify(error, where_of(self.backend.endpoint)), self.backend.endpoint)

    def _started(self) -> Started:
        request = self.request
        api = self.session.api
        preview = api.mode == "preview" or (api.streams and api.capabilities.step_previews)
        side = self.backend.settings.preview_max_side
        return Started(
            total_steps=request.steps or 0,
            model=request.model or "",
            seeds=list(self.seeds),
            width=request.width or 0,
            height=request.height or 0,
            num_images=request.num_images,
            preview_size=fit(request.width, request.height, side) if preview else None,
        )

    def _follow(self) -> Iterator[GenerationEvent]:
        job, api, where = self.job, self.session.api, self.session.where
        timeout = self.backend.endpoint.timeout
        deadline = time.monotonic() + timeout
        watch = _StatusWatch(api.mode)
        seen = 0
        while True:
            if self.control.wait_cancelled(POLL_SECONDS):
                return
            if self.control.finish_requested and not self.finish_sent and self.remote_run_id:
                self.finish_sent = True
                _call_soon(self.client, api.finish_api, self.remote_run_id)
            done = job.done()  # before the outputs, so that they are complete when done
            outputs = job.outputs()
            fresh = list(outputs[seen:])
            seen += len(fresh)
            if fresh and api.mode == "preview":
                yield from self._relay(fresh)
                if self.remote_over:
                    return
            elif api.streams and api.capabilities.step_previews:
                # a generator's values before its last are step images; once done, the last
                # value is the final one (gradio_client does not append the final again)
                intermediate = fresh[:-1] if done and seen == len(outputs) else fresh
                if (
                    not done
                    and intermediate
                    and (
                        self._may_be_final(len(intermediate))
                        or ends_run(api.pick(intermediate[-1]))
                    )
                ):
                    # The newest value reaches the run's last step, or is a widget's last
                    # state: it may be the final one, sent as an update before the completion
                    # (Gradio 5 does). Hold it until a newer value shows it was a step, or the
                    # completion shows it was the end.
                    seen -= 1
                    intermediate = intermediate[:-1]
                # a value without an image (None, as some apps yield while they work) is no step
                intermediate = [v for v in intermediate if api.pick(v) not in (None, [])]
                step = self._stream_step(intermediate, job.status()) if intermediate else None
                if step is not None:
                    yield step
            if done:
                self.remote_over = True
                yield from self._result()
                return
            status = watch.event(job.status())
            if status is not None:
                yield status
            if time.monotonic() > deadline:
                yield Failed(
                    f"The Gradio app {where} did not finish within {timeout:g} s (the "
                    "endpoint's timeout); its run was stopped. Fix: raise the endpoint's "
                    "timeout, or check the remote app.",
                    "timeout",
                )
                return

    def _result(self) -> Iterator[GenerationEvent]:
        """The end of a job that is done: its final value, or why it failed."""
        api, where = self.session.api, self.session.where
        try:
            result = self.job.result(timeout=0)
        except Exception as error:
            if self.control.cancelled:
                return  # anything raised after a cancel means "cancelled"
            raise classify(error, where) from None
        if api.mode == "preview":
            yield from self._relay([result])
            if not self.remote_over:
                yield Failed(
                    f"The Gradio app {where} ended the run without a final image or an error.",
                    "remote_error",
                )
            return
        yield Status("fetching", "Fetching the image from the remote app…")
        images = self._images(api.pick(result))
        size = (self.request.width, self.request.height)
        if self.request.init_image is not None and None not in size:
            # An edit's result has the input's size (validation set it), for the before/after
            # view; edit Spaces often make their model's own size (FLUX.1 Kontext: ~1 MP).
            images = [i if i.size == size else resize(i, size) for i in images]
        used = api.seed_used(result)
        if used is not None:  # the seed the app says it used wins over the one sent
            seeds = [used] * len(images)
        else:
            seeds = self.seeds if len(self.seeds) == len(images) else []
        yield Finished(images, seeds, metadata=self._metadata())

    def _may_be_final(self, values: int) -> bool:
        """Whether the newest of ``values`` fresh values would be counted at or past the
        request's last step (a streaming app's final image is its value at that point)."""
        steps = self.request.steps or 0
        return bool(steps) and self.last_step + values >= steps

    def _stream_step(self, values: Sequence[Any], status: StatusUpdate) -> Step | None:
        """One Step for a burst of a streaming app's values, with the newest one's image as
        its preview: the step and total from the app's progress when it reports them, else one
        step per value of the run's steps. None when the value holds no image."""
        try:
            images = self._images(self.session.api.pick(values[-1]))
        except RemoteFailure:
            return None  # a value without an image (a state, a text) is no step image
        step, total = self.last_step + len(values), self.request.steps or 0
        units = [u for u in status.progress_data or [] if isinstance(u.length, int) and u.length]
        if units and isinstance(units[-1].index, int) and units[-1].index > self.last_step:
            step, total = units[-1].index, units[-1].length
        self.last_step = step
        side = self.backend.settings.preview_max_side
        size = fit(self.request.width, self.request.height, side)
        preview = resize(images[0], size) if len(images) == 1 else [resize(i, size) for i in images]
        return Step(step, max(total, step), preview)

    def _images(self, value: Any) -> list:
        client = self.client
        downloads = client.output_dir if client.download_files else None
        return final_images(
            value,
            lambda file: self.session.fetch_file(client, file),
            self.session.where,
            downloads,
        )

    def _relay(self, values: Sequence[Any]) -> Iterator[GenerationEvent]:
        """Relay a remote DiffusionPreview's states; of a burst of new steps, only the newest
        preview is decoded (the others would be coalesced away downstream anyway), on the step
        that carried it."""
        where = self.session.where
        values = [self.session.api.pick(raw) for raw in values]
        for value in values:
            _check_state(value, where)
        newest, highest = -1, self.last_step
        for index, value in enumerate(values):
            step = value.get("step")
            if isinstance(step, int) and step > highest:
                highest = step
                if value.get("preview") or value.get("previews"):
                    newest = index
        for index, value in enumerate(values):
            if isinstance(value.get("run_id"), str):
                self.remote_run_id = value["run_id"]
            status = value.get("status")
            phase = value.get("phase")
            if phase in PHASES or status == "queued":
                event = self._status(value, phase or "queued")
                if event is not None:
                    yield event
            step = value.get("step")
            if isinstance(step, int) and step > self.last_step:
                self.last_step = step
                total = value.get("total_steps") or self.request.steps or step
                yield Step(step, total, self._preview(value) if index == newest else None)
            if status in ("done", "error", "cancelled"):
                self.remote_over = True
                yield self._end(value)
                return

    def _status(self, value: dict[str, Any], phase: str) -> Status | None:
        key = (phase, value.get("message"), value.get("queue_position"), value.get("queue_size"))
        if key == self.status_key:
            return None
        self.status_key = key
        return Status(
            phase,  # type: ignore[arg-type]
            str(value.get("message") or ""),
            _positive(value.get("queue_position")),
            _positive(value.get("queue_size")),
            _number(value.get("eta")),
        )

    def _preview(self, value: dict[str, Any]):
        where = self.session.where
        side = self.backend.settings.preview_max_side
        size = fit(self.request.width, self.request.height, side)
        previews = value.get("previews")
        if isinstance(previews, list) and previews:
            return [resize(decode_data_url(url, where), size) for url in previews]
        if value.get("preview"):
            return resize(decode_data_url(value["preview"], where), size)
        return None

    def _end(self, value: dict[str, Any]) -> Finished | Failed:
        status, where = value["status"], self.session.where
        if status == "error":
            reason = value.get("reason")
            return Failed(
                f"The Gradio app {where} failed: {value.get('message') or 'no message'}",
                reason if reason in FAILURE_REASONS else "remote_error",
                _number(value.get("retry_after")),
            )
        if status == "cancelled":
            return Failed(
                f"The run was cancelled at the Gradio app {where} (by the app or its "
                "owner). Fix: try again.",
                "remote_error",
            )
        files = value.get("images") or []
        if not files:
            raise RemoteFailure(
                f"The Gradio app {where} finished the run without any image.", "remote_error"
            )
        images = self._images(files)
        seeds = [s for s in value.get("seeds") or [] if isinstance(s, int)]
        if len(seeds) != len(images):
            seeds = self.seeds if len(self.seeds) == len(images) else []
        total = value.get("total_steps") or 0
        return Finished(
            images,
            seeds,
            metadata=self._metadata(value),
            early=isinstance(value.get("step"), int) and 0 < value["step"] < total,
        )

    def _metadata(self, value: dict[str, Any] | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "remote": public_url(self.backend.endpoint.url),
            "api_name": self.session.api.api_name,
        }
        if value:
            metadata.update(
                {f"remote_{key}": value.get(key) for key in ("backend", "model") if value.get(key)}
            )
        return metadata


class _StatusWatch:
    """Turns the job's status (the remote queue, the remote's progress) into Status events."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.queued_since: float | None = None
        self.shown_queued = False
        self.last: tuple | None = None

    def event(self, update: StatusUpdate) -> Status | None:
        from gradio_client.utils import Status as Code

        code = update.code
        if code == Code.IN_QUEUE:
            now = time.monotonic()
            self.queued_since = self.queued_since or now
            rank = update.rank if isinstance(update.rank, int) else None
            waited = now - self.queued_since >= QUEUE_NOTICE_SECONDS
            if not (waited or (rank or 0) >= 1):
                return None
            self.shown_queued = True
            position = None if rank is None else rank + 1
            size = update.queue_size
            return self._once(
                Status("queued", "Queued at the remote app…", position, size, update.eta),
                ("queued", position, size),
            )
        if code in (Code.PROCESSING, Code.ITERATING, Code.PROGRESS):
            if self.mode == "image":
                message = _progress_text(update.progress_data)
                return self._once(Status("generating", message), ("generating", message))
            if self.shown_queued:
                message = "Running at the remote app…"
                return self._once(Status("generating", message), ("generating", message))
        return None

    def _once(self, status: Status, key: tuple) -> Status | None:
        if key == self.last:
            return None
        self.last = key
        return status


def _progress_text(progress: list | None) -> str:
    """ "Generating at the remote app… 3/20 steps" from gr.Progress data, when there is some."""
    text = "Generating at the remote app…"
    if not progress:
        return text
    unit = progress[-1]
    if isinstance(unit.index, int) and isinstance(unit.length, int) and unit.length:
        return f"{text} {unit.index}/{unit.length} {unit.unit or 'steps'}"
    if isinstance(unit.progress, float):
        return f"{text} {unit.progress:.0%}"
    return f"{text} {unit.desc}" if unit.desc else text


def _check_state(value: Any, where: str) -> None:
    """A remote DiffusionPreview value is a dict with a status; anything else is garbage."""
    if isinstance(value, Exception) or (
        isinstance(value, list) and value and isinstance(value[0], Exception)
    ):
        error = value if isinstance(value, Exception) else value[0]
        raise RemoteFailure(
            f"A value from the Gradio app {where} could not be read ({describe(error)}).",
            "remote_error",
        )
    if not isinstance(value, dict) or not isinstance(value.get("status"), str):
        text = repr(value)
        raise RemoteFailure(
            f"The Gradio app {where} sent a value that is not a DiffusionPreview state: "
            f"{type(value).__name__} {text[:80]}{'…' if len(text) > 80 else ''}. Fix: set "
            'options.mode = "image" for an endpoint that returns an image, or point '
            "options.output at its DiffusionPreview output.",
            "remote_error",
        )


def _input_file(request: GenerationRequest, api: Any) -> str | None:
    """The request's input image written to a PNG file of its own, for gradio_client to upload
    (it sends files by path); None when there is none or the endpoint takes no image."""
    if request.init_image is None or not api.takes_image:
        return None
    handle, path = tempfile.mkstemp(prefix="gdp-edit-", suffix=".png")
    with os.fdopen(handle, "wb") as file:
        request.init_image.convert("RGB").save(file, format="PNG")
    return path


def _handle_file(path: str) -> Any:
    from gradio_client import handle_file

    return handle_file(path)


def _remove(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def _stop_soon(session: Session, client: Client, job: Job, run_id: str | None) -> None:
    """Stop the remote run without waiting (the app may be slow or gone; whatever this raises
    is of no interest any more), then give the client back.

    The remote DiffusionPreview's Stop for the run stops it within a step; cancelling the job
    closes the remote handler at its next yield, or takes the job out of the remote queue.
    Both are sent at once (Stop is a queued event, slower to arrive than the cancel's one
    POST). The client goes back for reuse only once both are done, as a late cancel would stop
    whatever runs next on its session."""

    def stop() -> None:
        stopping = threading.Thread(
            target=_call, args=(client, session.api.stop_api, run_id), daemon=True
        )
        stopping.start()
        with contextlib.suppress(Exception):
            job.cancel()
        with contextlib.suppress(Exception):
            concurrent.futures.wait([job.future], timeout=STOP_WAIT_SECONDS)
        stopping.join(STOP_WAIT_SECONDS)
        session.release(client, reusable=job.done() and not stopping.is_alive())

    threading.Thread(target=stop, name="gdp-gradio-stop", daemon=True).start()


def _call_soon(client: Client, api_name: str | None, run_id: str) -> None:
    """Call one of the remote DiffusionPreview's events for ``run_id``, on a thread."""
    threading.Thread(
        target=_call, args=(client, api_name, run_id), name="gdp-gradio-call", daemon=True
    ).start()


def _call(client: Client, api_name: str | None, run_id: str | None) -> None:
    if api_name and run_id:
        with contextlib.suppress(Exception):
            # the event takes the component's value; the run's id is all it reads
            client.submit({"run_id": run_id}, api_name=api_name).result(timeout=STOP_WAIT_SECONDS)
