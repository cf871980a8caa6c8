"""The conformance kit: checks that a backend keeps the contract, for a plugin's own test suite.

One call runs every check and reports every failure::

    from gradio_diffusion_preview.testing import check_backend

    def test_backend_conforms():
        check_backend(MyBackend(), prompt="a red fox", steps=4, width=64, height=64,
                      failing_request={"options": {"style": "no-such-style"}})

or one pytest test per check, by subclassing ``BackendConformanceTests``::

    class TestMyBackend(BackendConformanceTests):
        backend = MyBackend()
        request = {"prompt": "a red fox", "steps": 4, "width": 64, "height": 64}
        failing_request = {"options": {"style": "no-such-style"}}

Every check runs the backend for real, on a worker thread with a time limit (as the server
does), and raises ``ConformanceError``, an ``AssertionError`` that names the backend, the check,
what was expected, what was seen and the events the backend yielded. A check that does not apply
to a backend (``check_cancel`` on one that declares ``cancel=False``) returns the reason instead
of ``None``. Request fields are those of ``GenerationRequest``; by default the kit asks for a
small, short, seeded run (see ``default_fields``), so tiny models check in seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, get_args

import numpy as np
import PIL.Image

from .backend import Backend, Capabilities, ModelInfo
from .control import RunControl
from .events import Failed, FailureReason, Finished, GenerationEvent, Started, Step
from .request import GenerationRequest, InvalidRequest, build_request, validate_request

__all__ = [
    "BackendConformanceTests", "ConformanceError", "ConformanceReport", "Recording",
    "check_backend", "check_batch", "check_cancel", "check_event_order", "check_failure",
    "check_final_images", "check_finish_early", "check_identity", "check_no_files",
    "check_previews", "check_seed", "check_steps", "check_stream", "default_fields",
    "run_backend",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds one run may take before the kit gives up on it (and fails the check)."""
DEFAULT_CANCEL_AFTER = 2
"""The step after which the cancel and finish-early checks send their signal."""
DEFAULT_PROMPT = "a lighthouse on a cliff at dusk, oil painting"
NO_SUCH_MODEL = "gdp-conformance/no-such-model"
"""The model the failure check asks for when a backend accepts any model and no
``failing_request`` is given; it must fail as a ``Failed`` event."""
CHECKS = (
    "identity", "event_order", "steps", "previews", "final_images", "seed", "no_files", "batch",
    "cancel", "finish_early", "failure", "stream",
)
"""Every check's name, in the order ``check_backend`` runs them."""
_EXTRA_PULLS = 3  # events pulled after a terminal event or a cancel, to see whether more come
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConformanceError(AssertionError):
    """A backend broke the contract: ``backend``, ``check``, ``expected`` and ``seen`` say how.

    When raised by ``check_backend`` it sums up several failures: ``failures`` holds each one.
    """

    def __init__(
        self, backend: str, check: str, expected: str, seen: str, events: str | None = None,
        failures: Sequence[ConformanceError] = (),
    ) -> None:
        self.backend, self.check, self.expected, self.seen = backend, check, expected, seen
        self.failures = list(failures)
        self.report: ConformanceReport | None = None  # set by check_backend
        message = f"Backend '{backend}' fails the {check} check: expected {expected}; saw {seen}."
        if events:
            message += f"\n    events: {events}"
        super().__init__(message)


@dataclass
class ConformanceReport:
    """What ``check_backend`` found: the checks that passed, were skipped (and why) or failed."""

    backend: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"Conformance of backend '{self.backend}': {len(self.passed)} passed, "
                 f"{len(self.skipped)} skipped, {len(self.failed)} failed"]
        lines += [f"  passed  {name}" for name in self.passed]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"  FAILED  {name}" for name in self.failed]
        return "\n".join(lines)


@dataclass
class Recording:
    """One run of ``backend.generate`` as the kit saw it."""

    backend: str
    request: GenerationRequest
    capabilities: Capabilities
    events: list[GenerationEvent] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    """Seconds from the call to ``generate`` to each event."""
    error: BaseException | None = None
    """What ``generate`` raised, if it raised."""
    ended: bool = False
    """True when the generator returned by itself."""
    timed_out: bool = False
    signal: str | None = None
    """"cancel" or "finish_early" when the run was sent that signal..."""
    signal_index: int | None = None
    """...after the event at this index..."""
    signal_time: float | None = None
    """...at this time (seconds from the call)..."""
    signal_limit: float | None = None
    """...and had this many seconds to take effect."""
    end_time: float | None = None
    """When the generator returned, raised or was given up on (seconds from the call)."""
    watched: bool = False
    writes: list[str] = field(default_factory=list)
    """Files opened for writing during the run, when it was ``watched``."""

    @property
    def started(self) -> Started | None:
        return next((e for e in self.events if isinstance(e, Started)), None)

    @property
    def steps(self) -> list[Step]:
        return [e for e in self.events if isinstance(e, Step)]

    @property
    def finished(self) -> Finished | None:
        return next((e for e in self.events if isinstance(e, Finished)), None)

    @property
    def failed(self) -> Failed | None:
        return next((e for e in self.events if isinstance(e, Failed)), None)

    def trace(self) -> str:
        """The events, one short phrase each (long runs are elided in the middle)."""
        words = [_describe(event) for event in self.events]
        if self.signal_index is not None:
            words.insert(self.signal_index + 1, f"<{self.signal}()>")
        if self.error is not None:
            words.append(f"raised {type(self.error).__name__}: {self.error}")
        elif self.timed_out:
            words.append("<no event within the time limit>")
        elif self.ended:
            words.append("<returned>")
        if len(words) > 12:
            words = [*words[:6], f"... {len(words) - 10} more ...", *words[-4:]]
        return ", ".join(words) or "<nothing>"


# --- running a backend -------------------------------------------------------------------------


def default_fields(backend: Backend) -> dict[str, Any]:
    """The request the kit makes when not told otherwise: small, 5 steps, seeded."""
    caps = backend.capabilities
    size = max(caps.min_size, 64)
    size = min(-(-size // caps.size_multiple) * caps.size_multiple, caps.max_size)
    low, high = caps.steps_range
    fields: dict[str, Any] = {
        "prompt": DEFAULT_PROMPT, "steps": min(max(5, low), high), "width": size, "height": size,
    }
    if caps.seed:
        fields["seed"] = 1234
    return fields


def run_backend(
    backend: Backend, *, timeout: float = DEFAULT_TIMEOUT, signal: str | None = None,
    signal_after: int = DEFAULT_CANCEL_AFTER, signal_timeout: float | None = None,
    watch_files: bool = False, **fields: Any,
) -> Recording:
    """Validate the request made of ``fields`` (over ``default_fields``) and run it, recording
    every event. ``signal`` ("cancel" or "finish_early") is sent once Step ``signal_after`` has
    arrived; the run then has ``signal_timeout`` seconds (by default about three step times, at
    least one second) to end. With ``watch_files`` the files opened for writing are recorded."""
    return _drive(backend, _resolve(backend, fields), timeout, signal, signal_after,
                  signal_timeout, watch_files)


def _resolve(backend: Backend, fields: dict[str, Any]) -> GenerationRequest:
    merged = {**default_fields(backend), **fields}
    try:
        return validate_request(build_request(backend, merged), backend)
    except InvalidRequest as error:
        raise ConformanceError(
            _id(backend), "request", "the kit's request to pass validation (pass request "
            "fields this backend accepts, e.g. prompt=..., steps=..., width=..., height=...)",
            str(error),
        ) from None


class _Puller:
    """Pulls one item at a time from an iterator on a worker thread, so that a backend that
    hangs is reported instead of hanging the test run (the server runs backends on a thread
    too). The iterator is only advanced when asked, as a consumer would."""

    def __init__(self, make: Callable[[], Any], name: str) -> None:
        self._asks: queue.Queue[str] = queue.Queue()
        self._answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._make = make
        threading.Thread(target=self._work, name=f"gdp-conformance-{name}", daemon=True).start()

    def _work(self) -> None:
        iterator = None
        try:
            while self._asks.get() == "next":
                try:
                    if iterator is None:
                        made = self._make()
                        if made is None:
                            raise TypeError("generate returned None instead of an iterator of "
                                            "events (is it missing its `yield`s?)")
                        iterator = iter(made)
                    item = next(iterator)
                except StopIteration:
                    self._answers.put(("end", None))
                    return
                except BaseException as error:  # reported as the backend's failure
                    self._answers.put(("raised", error))
                    return
                self._answers.put(("item", item))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with suppress(Exception):  # a backend's broken cleanup is not this check's
                    close()
            self._answers.put(("closed", None))

    def next(self, timeout: float) -> tuple[str, Any]:
        """("item", x), ("end", None), ("raised", error) or ("timeout", None)."""
        self._asks.put("next")
        try:
            return self._answers.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return "timeout", None

    def close(self, wait: float = 2.0) -> None:
        """Stop pulling and close the iterator (its ``finally`` blocks run) on the worker."""
        self._asks.put("stop")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if self._answers.get(timeout=max(deadline - time.monotonic(), 0.0))[0] \
                        == "closed":
                    return
            except queue.Empty:
                return


def _drive(
    backend: Backend, request: GenerationRequest, timeout: float, signal: str | None = None,
    signal_after: int = DEFAULT_CANCEL_AFTER, signal_timeout: float | None = None,
    watch_files: bool = False,
) -> Recording:
    control = RunControl()
    rec = Recording(_id(backend), request, backend.capabilities, watched=watch_files)
    limit = max(4 * (request.steps or 1) + 10, 20)  # events: enough to see a runaway backend
    with _watch_writes(rec.writes, watch_files):
        t0 = time.monotonic()
        puller = _Puller(lambda: backend.generate(request, control), rec.backend)
        extra = None  # events still to pull after a terminal event or a signal
        try:
            while True:
                wait = timeout - (time.monotonic() - t0)
                if rec.signal_limit is not None:  # a run told to stop gets less patience
                    wait = min(wait, rec.signal_time + 2 * rec.signal_limit + 1.0
                               - (time.monotonic() - t0))
                kind, item = puller.next(wait)
                now = time.monotonic() - t0
                if kind == "timeout":
                    rec.timed_out, rec.end_time = True, now
                    control.cancel()
                    break
                if kind in ("end", "raised"):
                    rec.ended, rec.error, rec.end_time = kind == "end", item, now
                    break
                rec.events.append(item)
                rec.times.append(now)
                if extra is not None:
                    extra -= 1
                elif isinstance(item, Finished | Failed):
                    extra = _EXTRA_PULLS
                elif (signal and isinstance(item, Step) and item.step >= signal_after
                      and rec.signal is None):
                    if signal == "cancel":
                        control.cancel()
                    else:
                        control.finish_early()
                    rec.signal, rec.signal_index = signal, len(rec.events) - 1
                    rec.signal_time = time.monotonic() - t0
                    rec.signal_limit = signal_timeout if signal_timeout is not None \
                        else _step_limit(rec)
                    extra = _EXTRA_PULLS + 1
                if extra == 0 or len(rec.events) >= limit:
                    rec.end_time = now
                    break
        finally:
            puller.close(wait=0.0 if rec.timed_out else 2.0)
    return rec


# --- watching for files ------------------------------------------------------------------------

_watchers: list[list[str]] = []
_hook_lock = threading.Lock()
_hook_installed = False
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    # Called by Python for every audited action in the process; must be cheap and never raise.
    if event != "open" or not _watchers:
        return
    try:
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
            isinstance(mode, str) and any(letter in mode for letter in "wax+"))
        if not writing:
            return
        path = os.path.abspath(os.fsdecode(path))
        if path.endswith((".pyc", ".pyc.tmp")) or "__pycache__" in path:
            return  # imports may cache bytecode at any time
        for watcher in list(_watchers):
            watcher.append(path)
    except Exception:
        pass


@contextmanager
def _watch_writes(into: list[str], active: bool = True) -> Iterator[list[str]]:
    """Record the paths of files opened for writing (by Python code, on any thread)."""
    global _hook_installed
    if not active:
        yield into
        return
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed; inert while no one watches
            _hook_installed = True
    _watchers.append(into)
    try:
        yield into
    finally:
        _watchers.remove(into)


def _cache_dirs() -> list[str]:
    """Model caches: downloading or locking a model there is not writing a preview."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
    dirs = [xdg / "huggingface", xdg / "torch"]
    dirs += [Path(os.environ[name]) for name in ("HF_HOME", "HF_HUB_CACHE", "TORCH_HOME")
             if os.environ.get(name)]
    return [str(path.resolve()) for path in dirs]


# --- the checks --------------------------------------------------------------------------------


def check_identity(backend: Backend) -> None:
    """The backend's identity, capabilities and models are well formed and consistent."""
    bid = _id(backend)

    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(bid, "identity", expected, seen)

    if not isinstance(backend, Backend):
        fail("an instance of gradio_diffusion_preview.Backend", type(backend).__name__)
    for name in ("id", "display_name", "location"):
        if not hasattr(backend, name):
            fail(f"the class attribute `{name}`", "it is missing")
    if not isinstance(backend.id, str) or not _ID_PATTERN.match(backend.id):
        fail("`id` to be a non-empty name of letters, digits, '.', '_' and '-' "
             "(it is what users type)", repr(backend.id))
    if not isinstance(backend.display_name, str) or not backend.display_name.strip():
        fail("`display_name` to be a non-empty string", repr(backend.display_name))
    if backend.location not in ("local", "remote"):
        fail("`location` to be 'local' or 'remote'", repr(backend.location))
    caps = backend.capabilities
    if not isinstance(caps, Capabilities):
        fail("`capabilities` to be a gradio_diffusion_preview.Capabilities",
             type(caps).__name__)
    problems = _capability_problems(caps)
    if problems:
        fail("capabilities whose defaults satisfy their own limits", "; ".join(problems))
    try:
        models = list(backend.models())
        default = backend.default_model()
    except Exception as error:
        fail("models() to list the models (the kit needs the listing to work)",
             f"{type(error).__name__}: {error}")
    wrong = [m for m in models if not isinstance(m, ModelInfo)]
    if wrong:
        fail("models() to return ModelInfo objects", repr(wrong[0]))
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        fail("models() to list each model id once", ", ".join(ids))
    if not models and not caps.any_model:
        fail("at least one model (or capabilities.any_model=True): otherwise every request "
             "fails validation", "models() returned nothing")
    if default is not None and not caps.any_model and default not in ids:
        fail(f"default_model() to be one of the listed models ({', '.join(ids)})", repr(default))
    try:
        json.dumps(backend.describe())
    except (TypeError, ValueError) as error:
        fail("describe() to be JSON-serialisable (the CLI prints it)", str(error))


def check_event_order(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started, then Steps, then Finished or one Failed, then the generator returns; nothing
    raised, nothing after the end, no run without an end, no event of another type."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    _order(rec, "event_order", allow_failed=True)


def check_steps(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started.total_steps is the request's steps; Steps count up from 1 to it, each carrying
    the same total; a run that finishes normally ends on the last step."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    _order(rec, "steps")
    _steps(rec, "steps")


def check_previews(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Every preview is an in-memory PIL image or ``HxWx3`` ``uint8`` array of the size that
    Started.preview_size declared; a run that declares previews sends some; one that declares
    none (or whose capabilities say step_previews=False) sends none."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    _order(rec, "previews")
    _previews(rec)


def check_final_images(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> None:
    """Started and Finished describe the request (model, size, number of images, seed) and
    Finished carries that many PIL images of the requested size, with one seed each."""
    rec = recording or run_backend(backend, timeout=timeout, **fields)
    _order(rec, "final_images")
    _final_images(rec, "final_images")


def check_batch(
    backend: Backend, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any,
) -> str | None:
    """A batch of two gives two images at the requested size with two different seeds."""
    if backend.capabilities.max_batch < 2:
        return "capabilities.max_batch is 1"
    rec = run_backend(backend, timeout=timeout, **{**fields, "num_images": 2})
    _order(rec, "batch")
    _final_images(rec, "batch")
    seeds = rec.finished.seeds
    if len(set(seeds)) != len(seeds):
        raise ConformanceError(rec.backend, "batch", "a different seed for each image",
                               f"seeds {seeds}", rec.trace())
    return None


def check_seed(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """The same seed gives the same images again; the next seed gives different ones."""
    if not backend.capabilities.seed:
        return "capabilities.seed is False"
    first = recording or run_backend(backend, timeout=timeout, **fields)
    _order(first, "seed")
    _final_images(first, "seed")
    request = first.request.model_dump()
    again = _drive(backend, first.request, timeout)
    _order(again, "seed")
    _final_images(again, "seed")
    other_seed = (request["seed"] + 1) % 2**32
    other = run_backend(backend, timeout=timeout, **{**request, "seed": other_seed})
    _order(other, "seed")
    _final_images(other, "seed")
    for a, b in zip(first.finished.images, again.finished.images, strict=True):
        difference = _difference(a, b)
        if difference:
            raise ConformanceError(
                first.backend, "seed", f"seed {request['seed']} to give the same image twice",
                f"images that differ by up to {difference} (of 255) per pixel", again.trace())
    if not _difference(first.finished.images[0], other.finished.images[0]):
        raise ConformanceError(
            first.backend, "seed", f"seeds {request['seed']} and {other_seed} to give "
            "different images", "identical images: is the seed passed to the generator?",
            other.trace())
    return None


def check_cancel(
    backend: Backend, *, cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None, timeout: float = DEFAULT_TIMEOUT, **fields: Any,
) -> str | None:
    """``control.cancel()`` sent after Step ``cancel_after``: at most one more Step, no
    Finished or Failed, and the generator returns within ``cancel_timeout`` seconds (by
    default about three step times, at least one second)."""
    if not backend.capabilities.cancel:
        return "capabilities.cancel is False"
    return _signal_check(backend, "cancel", cancel_after, cancel_timeout, timeout, fields)


def check_finish_early(
    backend: Backend, *, cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None, timeout: float = DEFAULT_TIMEOUT, **fields: Any,
) -> str | None:
    """``control.finish_early()`` sent after Step ``cancel_after``: at most one more Step, then
    Finished with ``early=True`` and the requested images, promptly."""
    if not backend.capabilities.finish_early:
        return "capabilities.finish_early is False"
    return _signal_check(backend, "finish_early", cancel_after, cancel_timeout, timeout, fields)


def check_failure(
    backend: Backend, *, failing_request: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT, **fields: Any,
) -> str | None:
    """A request that passes validation but that the backend cannot run ends in one Failed
    event with a message and a known reason, not an exception.

    ``failing_request`` holds the fields that make it fail, over the other ``fields`` (for
    example ``{"options": {"style": "no-such-style"}}``). Without it, a backend that accepts any
    model is asked for a model that does not exist; for others the check does not apply.
    """
    if failing_request is None:
        if not backend.capabilities.any_model:
            return ("pass failing_request=... (request fields that pass validation but make "
                    "generate fail, e.g. a bad value for one of its options)")
        failing_request = {"model": NO_SUCH_MODEL}
    merged = {**default_fields(backend), **fields, **failing_request}
    try:
        request = validate_request(build_request(backend, merged), backend)
    except InvalidRequest as error:
        raise ValueError(
            f"failing_request is rejected by validation before it reaches backend "
            f"'{_id(backend)}' ({error}); give fields that pass validation but make generate "
            "fail, e.g. a bad value for one of the backend's options."
        ) from None
    rec = _drive(backend, request, timeout)
    _order(rec, "failure", allow_failed=True)
    failed = rec.failed
    if failed is None:
        raise ConformanceError(
            rec.backend, "failure", f"a Failed event for the failing request {failing_request}",
            "Finished" if rec.finished else "no Failed event", rec.trace())
    if not isinstance(failed.message, str) or not failed.message.strip():
        raise ConformanceError(rec.backend, "failure", "Failed.message to say what went wrong "
                               "and how to fix it", repr(failed.message), rec.trace())
    if failed.reason not in get_args(FailureReason):
        raise ConformanceError(
            rec.backend, "failure", f"Failed.reason to be one of {get_args(FailureReason)}",
            repr(failed.reason), rec.trace())
    return None


def check_no_files(
    backend: Backend, *, recording: Recording | None = None, timeout: float = DEFAULT_TIMEOUT,
    allow_writes_under: Sequence[str | os.PathLike] = (), **fields: Any,
) -> None:
    """Neither a run of ``generate`` nor the whole ``stream()`` path opens a file for writing
    (previews live in memory). Model caches (Hugging Face, torch) and ``allow_writes_under``
    are exempt. Python-level opens are seen on every thread; native code is not watched."""
    rec = recording if recording is not None and recording.watched else None
    rec = rec or run_backend(backend, timeout=timeout, watch_files=True, **fields)
    _order(rec, "no_files")
    _no_writes(rec.backend, "a run of generate()", rec.writes, allow_writes_under, rec.trace())
    states, writes = _stream(backend, rec.request, timeout, watch_files=True)
    _no_writes(rec.backend, "stream()", writes, allow_writes_under, _trace_states(states))


def check_stream(
    backend: Backend, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any,
) -> None:
    """``stream(backend, ...)``, the path the component uses, yields RunStates that end "done"
    with the requested images and carry previews only as in-memory data URLs."""
    request = _resolve(backend, fields)
    states, _ = _stream(backend, request, timeout)
    _stream_states(_id(backend), request, states)
    return None


def check_backend(
    backend: Backend, *, failing_request: dict[str, Any] | None = None,
    cancel_after: int = DEFAULT_CANCEL_AFTER, cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT, allow_writes_under: Sequence[str | os.PathLike] = (),
    skip: Sequence[str] = (), **fields: Any,
) -> ConformanceReport:
    """Run every check on ``backend`` with the request made of ``fields``; raise one
    ``ConformanceError`` listing every failure, or return the report (passed and skipped).

    ``skip`` names checks not to run (see ``CHECKS``). The main run is shared by the checks
    that only read it, so a full check costs about eight short runs.
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; the checks are: {', '.join(CHECKS)}")
    report = ConformanceReport(_id(backend))
    failures: list[ConformanceError] = []

    def attempt(name: str, check: Callable[[], str | None]) -> None:
        if name in skip:
            report.skipped[name] = "skipped by the caller"
            return
        try:
            reason = check()
        except ConformanceError as error:
            failures.append(error)
            report.failed[name] = str(error)
        else:
            if reason:
                report.skipped[name] = reason
            else:
                report.passed.append(name)

    attempt("identity", lambda: check_identity(backend))
    if "identity" in report.failed:
        return _conclude(report, failures)
    request = _resolve(backend, fields)
    fields = request.model_dump()  # resolved, so every run below uses the same model and seed
    main = _drive(backend, request, timeout, watch_files="no_files" not in skip)
    shared = {"recording": main, "timeout": timeout}
    attempt("event_order", lambda: check_event_order(backend, **shared))
    dependent = ("steps", "previews", "final_images", "seed", "no_files")
    if "event_order" in report.failed:
        for name in dependent:
            report.skipped[name] = "not run: the event order check failed"
    else:
        attempt("steps", lambda: check_steps(backend, **shared))
        attempt("previews", lambda: check_previews(backend, **shared))
        attempt("final_images", lambda: check_final_images(backend, **shared))
        attempt("seed", lambda: check_seed(backend, **shared))
        attempt("no_files", lambda: check_no_files(
            backend, allow_writes_under=allow_writes_under, **shared))
    attempt("batch", lambda: check_batch(backend, timeout=timeout, **fields))
    signal_args = {"cancel_after": cancel_after, "cancel_timeout": cancel_timeout,
                   "timeout": timeout}
    attempt("cancel", lambda: check_cancel(backend, **signal_args, **fields))
    attempt("finish_early", lambda: check_finish_early(backend, **signal_args, **fields))
    attempt("failure", lambda: check_failure(
        backend, failing_request=failing_request, timeout=timeout, **fields))
    attempt("stream", lambda: check_stream(backend, timeout=timeout, **fields))
    return _conclude(report, failures)


def _conclude(report: ConformanceReport, failures: list[ConformanceError]) -> ConformanceReport:
    if not failures:
        return report
    if len(failures) == 1:
        error = failures[0]
    else:
        error = ConformanceError(
            report.backend, "conformance", "every check to pass",
            f"{len(failures)} failures ({', '.join(report.failed)})\n\n"
            + "\n\n".join(str(f) for f in failures),
            failures=failures,
        )
    error.report = report
    raise error


# --- what the checks look at -------------------------------------------------------------------


def _order(rec: Recording, check: str, allow_failed: bool = False) -> None:
    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(rec.backend, check, expected, seen, rec.trace())

    if rec.error is not None:
        where = f"after {_describe(rec.events[-1])}" if rec.events else "before any event"
        fail("failures reported as a Failed(message, reason) event, never raised",
             f"generate raised {type(rec.error).__name__}: {rec.error} ({where})")
    if rec.timed_out:
        fail("each event within the time limit (timeout=...)",
             "the backend stopped producing events without returning")
    for event in rec.events:
        if not isinstance(event, Started | Step | Finished | Failed):
            fail("only Started, Step, Finished and Failed events", f"a {type(event).__name__}")
    if not rec.events:
        fail("Started, then Steps, then Finished or Failed", "no events at all")
    first = rec.events[0]
    if isinstance(first, Failed):
        body = []
    elif isinstance(first, Started):
        body = rec.events[1:]
    else:
        fail("Started as the first event", _describe(first))
    started_twice = [e for e in body if isinstance(e, Started)]
    if started_twice:
        fail("Started exactly once, first", "a second Started")
    ends = [i for i, e in enumerate(rec.events) if isinstance(e, Finished | Failed)]
    if rec.signal == "cancel":
        return  # the cancel check judges the end of a cancelled run
    if not ends:
        fail("the run to end with Finished or Failed",
             "the generator returned without either" if rec.ended else "no end")
    if len(rec.events) > ends[0] + 1:
        fail("nothing after the first Finished or Failed",
             f"{_describe(rec.events[ends[0] + 1])} after {_describe(rec.events[ends[0]])}")
    if not rec.ended:
        fail("the generator to return after its last event", "it kept running")
    if isinstance(rec.events[-1], Failed) and not allow_failed:
        fail("a valid request to finish", f"Failed: {rec.events[-1].message}")


def _steps(rec: Recording, check: str) -> None:
    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(rec.backend, check, expected, seen, rec.trace())

    started, steps = rec.started, rec.steps
    if started is None:
        fail("a Started event", "none")
    if started.total_steps != rec.request.steps:
        fail(f"Started.total_steps to be the request's steps ({rec.request.steps})",
             f"total_steps={started.total_steps}")
    numbers = [s.step for s in steps]
    for s in steps:
        if s.total_steps != started.total_steps:
            fail(f"every Step.total_steps to be {started.total_steps}, as Started said",
                 f"Step {s.step} with total_steps={s.total_steps}")
    if any(not isinstance(n, int) or not 1 <= n <= started.total_steps for n in numbers):
        fail(f"step numbers from 1 to {started.total_steps}", f"steps {numbers}")
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        fail("step numbers that increase", f"steps {numbers}")
    finished = rec.finished
    if finished is not None and not finished.early and started.total_steps:
        if not numbers:
            fail(f"Step events (1..{started.total_steps}) before Finished", "none")
        if numbers[-1] != started.total_steps:
            fail(f"the last Step before Finished to be {started.total_steps}",
                 f"the last was {numbers[-1]}")


def _previews(rec: Recording) -> None:
    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(rec.backend, "previews", expected, seen, rec.trace())

    started = rec.started
    if started is None:
        return
    declared = started.preview_size
    sent = [s for s in rec.steps if s.preview is not None]
    if declared is None:
        if sent:
            fail("no previews, as Started.preview_size is None",
                 f"a preview on Step {sent[0].step}")
        return
    if not rec.capabilities.step_previews:
        fail("Started.preview_size=None, as capabilities.step_previews is False",
             f"preview_size={declared}")
    if (not isinstance(declared, tuple | list) or len(declared) != 2
            or not all(isinstance(n, int) and n > 0 for n in declared)):
        fail("Started.preview_size to be (width, height) in pixels", repr(declared))
    if rec.steps and not sent:
        fail(f"previews, as Started.preview_size is {tuple(declared)}", "no Step with a preview")
    width, height = declared
    for s in sent:
        preview = s.preview
        if isinstance(preview, PIL.Image.Image):
            if getattr(preview, "filename", None):
                fail("previews made in memory", f"Step {s.step}'s preview was read from "
                     f"{preview.filename}")
            size = preview.size
        elif isinstance(preview, np.ndarray):
            if isinstance(preview, np.memmap) or isinstance(preview.base, np.memmap):
                fail("previews made in memory", f"Step {s.step}'s preview is a memory-mapped "
                     "file")
            if preview.ndim != 3 or preview.shape[2] != 3 or preview.dtype != np.uint8:
                fail("a preview array of shape (height, width, 3) and dtype uint8",
                     f"Step {s.step}: shape {preview.shape}, dtype {preview.dtype}")
            size = (preview.shape[1], preview.shape[0])
        else:
            fail("previews that are PIL images or HxWx3 uint8 numpy arrays",
                 f"Step {s.step}: a {type(preview).__name__}")
        if tuple(size) != (width, height):
            fail(f"previews of {width}x{height} (Started.preview_size)",
                 f"Step {s.step}: a {size[0]}x{size[1]} preview")


def _final_images(rec: Recording, check: str) -> None:
    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(rec.backend, check, expected, seen, rec.trace())

    req, started, finished = rec.request, rec.started, rec.finished
    if finished is None:
        failed = rec.failed
        fail("Finished for a valid request",
             f"Failed: {failed.message}" if failed else "no Finished event")
    if started is not None:
        if (started.width, started.height) != (req.width, req.height):
            fail(f"Started to announce {req.width}x{req.height}",
                 f"{started.width}x{started.height}")
        if started.num_images != req.num_images or len(started.seeds) != req.num_images:
            fail(f"Started to announce {req.num_images} image(s) with one seed each",
                 f"num_images={started.num_images}, seeds={started.seeds}")
        if req.seed is not None and started.seeds and started.seeds[0] != req.seed:
            fail(f"the first seed to be the request's seed ({req.seed})",
                 f"seeds={started.seeds}")
        if finished.seeds != started.seeds:
            fail(f"Finished.seeds to be the seeds Started announced ({started.seeds})",
                 f"{finished.seeds}")
    images = finished.images
    if not isinstance(images, list) or len(images) != req.num_images:
        count = len(images) if isinstance(images, list) else type(images).__name__
        fail(f"{req.num_images} final image(s) in a list", f"{count}")
    if len(finished.seeds) != len(images):
        fail("one seed per final image", f"{len(images)} images, seeds {finished.seeds}")
    for index, image in enumerate(images):
        if not isinstance(image, PIL.Image.Image):
            fail("final images that are PIL images", f"image {index}: {type(image).__name__}")
        if image.size != (req.width, req.height):
            fail(f"final images of the requested {req.width}x{req.height}",
                 f"image {index} is {image.width}x{image.height}")


def _signal_check(
    backend: Backend, signal: str, after: int, bound: float | None, timeout: float,
    fields: dict[str, Any],
) -> str | None:
    check = "cancel" if signal == "cancel" else "finish_early"
    request = _resolve(backend, fields)
    high = backend.capabilities.steps_range[1]
    steps = max(request.steps, min(after + 2, high))
    after = min(after, steps - 2)
    if after < 1:
        return f"needs a run of at least 3 steps; the backend allows at most {high}"
    request = request.model_copy(update={"steps": steps})
    rec = _drive(backend, request, timeout, signal=signal, signal_after=after,
                 signal_timeout=bound)

    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(rec.backend, check, expected, seen, rec.trace())

    if rec.signal is None:
        _order(rec, check)
        fail(f"a Step {after} to send {signal}() after", "the run ended first")
    before = rec.events[:rec.signal_index + 1]
    _order(Recording(rec.backend, request, rec.capabilities, before, rec.times, ended=True,
                     signal="cancel"), check)
    after_events = rec.events[rec.signal_index + 1:]
    more_steps = [e for e in after_events if isinstance(e, Step)]
    limit = rec.signal_limit
    if len(more_steps) > 1:
        fail(f"at most one more Step after {signal}() (sent after Step {after})",
             f"{'' if rec.ended else 'at least '}{len(more_steps)} more: steps "
             f"{[s.step for s in more_steps]}")
    if rec.error is not None:
        fail(f"the generator to return quietly after {signal}()",
             f"it raised {type(rec.error).__name__}: {rec.error}")
    if signal == "cancel":
        ends = [e for e in after_events if isinstance(e, Finished | Failed)]
        if ends:
            fail("a cancelled run to simply stop yielding (no Finished or Failed)",
                 _describe(ends[0]))
    else:
        others = [e for e in after_events if not isinstance(e, Step)]
        finished = rec.finished
        if finished is None or len(others) != 1 or rec.events[-1] is not finished:
            fail(f"Finished(early=True) right after {signal}() (at most one Step between)",
                 ", ".join(_describe(e) for e in after_events) or "nothing")
        if not finished.early:
            fail("Finished.early=True for a run finished early", "early=False")
        _final_images(rec, check)
    if not rec.ended:
        fail(f"the generator to return within {limit:.1f}s of {signal}()",
             "no return within the time limit" if rec.timed_out else "it kept running")
    took = rec.end_time - rec.signal_time
    if took > limit:
        fail(f"the generator to return within {limit:.1f}s of {signal}() (about one step)",
             f"it took {took:.1f}s")
    return None


def _stream(
    backend: Backend, request: GenerationRequest, timeout: float, watch_files: bool = False,
) -> tuple[list, list[str]]:
    from .streaming import stream  # the kit is usable without importing Gradio until here

    states: list = []
    writes: list[str] = []
    with _watch_writes(writes, watch_files):
        puller = _Puller(lambda: stream(backend, request, min_interval=0.0), _id(backend))
        t0 = time.monotonic()
        try:
            while True:
                kind, item = puller.next(timeout - (time.monotonic() - t0))
                if kind == "item":
                    states.append(item)
                    continue
                if kind == "raised":
                    raise ConformanceError(
                        _id(backend), "stream", "stream() to report problems as states",
                        f"it raised {type(item).__name__}: {item}", _trace_states(states))
                if kind == "timeout":
                    raise ConformanceError(
                        _id(backend), "stream", f"stream() to end within {timeout:.0f}s",
                        "it did not", _trace_states(states))
                break
        finally:
            puller.close()
    return states, writes


def _stream_states(backend_id: str, request: GenerationRequest, states: list) -> None:
    def fail(expected: str, seen: str) -> NoReturn:
        raise ConformanceError(backend_id, "stream", expected, seen, _trace_states(states))

    if not states:
        fail("RunStates from stream()", "none")
    last = states[-1]
    if last.status != "done":
        fail("the last state to be 'done'", f"'{last.status}': {last.message}")
    if len(last.images) != request.num_images or any(
            image.size != (request.width, request.height) for image in last.images):
        fail(f"{request.num_images} image(s) of {request.width}x{request.height}",
             ", ".join(f"{i.width}x{i.height}" for i in last.images) or "no images")
    for state in states:
        if state.preview is not None and not state.preview.startswith("data:image/"):
            fail("previews as in-memory data URLs", f"{state.preview[:60]!r}")


def _no_writes(
    backend_id: str, what: str, writes: list[str], allowed: Sequence[str | os.PathLike],
    trace: str,
) -> None:
    exempt = _cache_dirs() + [str(Path(p).resolve()) for p in allowed]
    bad = sorted({p for p in writes if not p.startswith(("/dev/", "/proc/"))
                  and not any(p == d or p.startswith(d + os.sep) for d in exempt)})
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ConformanceError(
            backend_id, "no_files", f"{what} to write no files (previews stay in memory)",
            f"files opened for writing: {shown}", trace)


# --- small helpers -----------------------------------------------------------------------------


def _step_limit(rec: Recording) -> float:
    """About three step times (the slowest seen so far), at least one second."""
    times = [t for e, t in zip(rec.events, rec.times, strict=False)
             if isinstance(e, Step | Started)]
    intervals = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(1.0, 3 * max(intervals, default=0.0))


def _id(backend: Any) -> str:
    return str(getattr(backend, "id", None) or type(backend).__name__)


def _capability_problems(caps: Capabilities) -> list[str]:
    problems = []
    if caps.min_size > caps.max_size:
        problems.append(f"min_size {caps.min_size} > max_size {caps.max_size}")
    for side in caps.default_size:
        if not caps.min_size <= side <= caps.max_size or side % caps.size_multiple:
            problems.append(f"default_size {caps.default_size} is outside {caps.min_size}.."
                            f"{caps.max_size} or not a multiple of {caps.size_multiple}")
            break
    low, high = caps.steps_range
    if not 1 <= low <= high:
        problems.append(f"steps_range {caps.steps_range} is not 1 <= low <= high")
    elif not low <= caps.default_steps <= high:
        problems.append(f"default_steps {caps.default_steps} is outside steps_range "
                        f"{caps.steps_range}")
    g_low, g_high = caps.guidance_range
    if caps.guidance and not g_low <= caps.default_guidance <= g_high:
        problems.append(f"default_guidance {caps.default_guidance} is outside guidance_range "
                        f"{caps.guidance_range}")
    return problems


def _describe(event: Any) -> str:
    if isinstance(event, Started):
        preview = (f", preview {event.preview_size[0]}x{event.preview_size[1]}"
                   if event.preview_size else "")
        return (f"Started(total_steps={event.total_steps}, {event.width}x{event.height}, "
                f"seeds={event.seeds}{preview})")
    if isinstance(event, Step):
        if event.preview is None:
            return f"Step {event.step}/{event.total_steps}"
        preview = event.preview
        size = (f"{preview.width}x{preview.height}" if isinstance(preview, PIL.Image.Image)
                else "x".join(str(n) for n in getattr(preview, "shape", ())) or "?")
        return f"Step {event.step}/{event.total_steps} [{size}]"
    if isinstance(event, Finished):
        sizes = ", ".join(f"{i.width}x{i.height}" if isinstance(i, PIL.Image.Image)
                          else type(i).__name__ for i in event.images)
        early = ", early" if event.early else ""
        return f"Finished({len(event.images)} image(s) {sizes}, seeds={event.seeds}{early})"
    if isinstance(event, Failed):
        return f"Failed({event.reason}: {event.message})"
    return f"<{type(event).__name__}>"


def _trace_states(states: list) -> str:
    words = [f"{s.status}@{s.step}/{s.total_steps}" for s in states]
    if len(words) > 12:
        words = [*words[:6], "...", *words[-4:]]
    return ", ".join(words) or "<no states>"


def _difference(a: PIL.Image.Image, b: PIL.Image.Image) -> int:
    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return 255
    return int(np.abs(x - y).max())


# --- pytest ------------------------------------------------------------------------------------


class BackendConformanceTests:
    """Subclass in a test module (name it ``Test...``) to get one pytest test per check.

    Set ``backend`` (or override ``make_backend``), ``request`` (request fields, over
    ``default_fields``) and, if the backend lists its models, ``failing_request`` (fields that
    pass validation but make ``generate`` fail). Checks that do not apply are skipped with the
    reason. The run that several checks read is made once per class.
    """

    backend: Backend
    request: dict[str, Any] = {}
    failing_request: dict[str, Any] | None = None
    cancel_after: int = DEFAULT_CANCEL_AFTER
    cancel_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    allow_writes_under: Sequence[str | os.PathLike] = ()

    def make_backend(self) -> Backend:
        return self.backend

    def request_fields(self) -> dict[str, Any]:
        return dict(self.request)

    def _main(self) -> tuple[Backend, Recording]:
        backend, fields = self.make_backend(), self.request_fields()
        cache = type(self).__dict__.get("_conformance_runs")
        if cache is None:
            cache = {}
            type(self)._conformance_runs = cache
        key = (id(backend), repr(sorted(fields.items())))
        if key not in cache:
            cache[key] = run_backend(backend, timeout=self.timeout, watch_files=True, **fields)
        return backend, cache[key]

    def _signal_args(self) -> dict[str, Any]:
        return {"cancel_after": self.cancel_after, "cancel_timeout": self.cancel_timeout,
                "timeout": self.timeout, **self.request_fields()}

    @staticmethod
    def _skip_if(reason: str | None) -> None:
        if reason:
            import pytest

            pytest.skip(reason)

    def test_identity(self) -> None:
        check_identity(self.make_backend())

    def test_event_order(self) -> None:
        backend, rec = self._main()
        check_event_order(backend, recording=rec)

    def test_steps(self) -> None:
        backend, rec = self._main()
        check_steps(backend, recording=rec)

    def test_previews(self) -> None:
        backend, rec = self._main()
        check_previews(backend, recording=rec)

    def test_final_images(self) -> None:
        backend, rec = self._main()
        check_final_images(backend, recording=rec)

    def test_seed(self) -> None:
        backend, rec = self._main()
        self._skip_if(check_seed(backend, recording=rec, timeout=self.timeout))

    def test_batch(self) -> None:
        self._skip_if(check_batch(self.make_backend(), timeout=self.timeout,
                                  **self.request_fields()))

    def test_cancel(self) -> None:
        self._skip_if(check_cancel(self.make_backend(), **self._signal_args()))

    def test_finish_early(self) -> None:
        self._skip_if(check_finish_early(self.make_backend(), **self._signal_args()))

    def test_failure(self) -> None:
        self._skip_if(check_failure(self.make_backend(), failing_request=self.failing_request,
                                    timeout=self.timeout, **self.request_fields()))

    def test_no_files(self) -> None:
        backend, rec = self._main()
        check_no_files(backend, recording=rec, timeout=self.timeout,
                       allow_writes_under=self.allow_writes_under)

    def test_stream(self) -> None:
        check_stream(self.make_backend(), timeout=self.timeout, **self.request_fields())

