"""The checks of the two signals a user can send a running generation: ``cancel()`` (Stop)
and ``finish_early()`` ("Use this preview"). Each runs the backend, sends the signal part-way
(after a Step, or right after Started, where a backend that waits on a service spends its time)
and judges how quickly and how cleanly the run ends."""

from __future__ import annotations

from typing import Any

from ..backend import Backend
from ..events import Failed, Finished, Started, Status, Step
from .checks_events import expect_event_order, expect_final_images
from .defaults import (
    DEFAULT_CANCEL_AFTER,
    DEFAULT_START_CANCEL_TIMEOUT,
    DEFAULT_TIMEOUT,
    capabilities_for_run,
)
from .recording import Recording, fail_check, record_run, resolve_request, step_time_limit
from .report import describe_event

CANCEL_FIX = (
    "check control.cancelled once per step or wait, and wait with "
    "control.wait_cancelled(seconds) (it wakes at once on cancel), never time.sleep; run a "
    "blocking call (an HTTP request) on a worker thread and wait for it in short "
    "control.wait_cancelled slices; then return, with no Finished or Failed"
)
FINISH_FIX = (
    "check control.finish_requested once per step and answer it with your current estimate "
    "as Finished(images, seeds, early=True)"
)


def check_cancel(
    backend: Backend,
    *,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.cancel()`` sent after Step ``cancel_after``: at most one more Step, no
    Finished or Failed, and the generator returns within ``cancel_timeout`` seconds (by
    default about three step times, at least one second). A backend that reports no steps
    (``step_events=False``) is checked by ``check_cancel_at_start`` instead."""
    if not backend.capabilities.cancel:
        return "capabilities.cancel is False"
    if not backend.capabilities.step_events:
        return "capabilities.step_events is False: check_cancel_at_start checks its cancel"
    return check_signal(backend, "cancel", cancel_after, cancel_timeout, timeout, fields)


def check_cancel_at_start(
    backend: Backend,
    *,
    cancel_timeout: float | None = None,
    reference: Recording | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.cancel()`` sent right after Started (where a backend that waits on a service
    spends its time): at most one more Step or Status, no Finished or Failed, and the generator
    returns within ``cancel_timeout`` seconds: by default 2, or, when an ordinary run is given
    as ``reference``, about three of its step times if that is longer (a backend that stops
    between steps cannot stop sooner)."""
    if not backend.capabilities.cancel:
        return "capabilities.cancel is False"
    bound = cancel_timeout
    if bound is None:
        steps = step_time_limit(reference) if reference is not None and reference.steps else 0
        bound = max(DEFAULT_START_CANCEL_TIMEOUT, steps)
    request = resolve_request(backend, fields)
    rec = record_run(
        backend, request, timeout, signal="cancel", signal_after=0, signal_timeout=bound
    )
    check = "cancel_at_start"
    if rec.signal is None:
        expect_event_order(rec, check, allow_failed=True)
        fail_check(rec, check, "a Started event to send cancel() after", "none")
    after_events = rec.events[rec.signal_index + 1 :]
    if len(after_events) > 1:
        fail_check(
            rec,
            check,
            "at most one more Step or Status after cancel() (sent right after Started)",
            f"{'' if rec.ended else 'at least '}{len(after_events)} more: "
            + ", ".join(describe_event(e) for e in after_events[:4]),
            fix=CANCEL_FIX,
        )
    expect_prompt_end(rec, check, after_events)
    return None


def check_finish_early(
    backend: Backend,
    *,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.finish_early()`` sent after Step ``cancel_after`` (right after Started for a
    backend with ``step_events=False``): at most one more Step, then Finished with
    ``early=True`` and the requested images, promptly."""
    if not backend.capabilities.finish_early:
        return "capabilities.finish_early is False"
    return check_signal(backend, "finish_early", cancel_after, cancel_timeout, timeout, fields)


def check_signal(
    backend: Backend,
    signal: str,
    after: int,
    bound: float | None,
    timeout: float,
    fields: dict[str, Any],
) -> str | None:
    """Send ``signal`` ("cancel" or "finish_early", also the check's name) after Step
    ``after`` of a run long enough to go on past it (right after Started for a backend that
    reports no steps), and judge the end of the run."""
    check = signal
    request = resolve_request(backend, fields)
    if not backend.capabilities.step_events or request.steps is None:
        after = 0  # no steps to count (a service that waits, or takes no number of steps)
    else:
        high = capabilities_for_run(backend, request.model).steps_range[1]
        steps = max(request.steps, min(after + 2, high))
        after = min(after, steps - 2)
        if after < 1:
            return f"needs a run of at least 3 steps; the backend allows at most {high}"
        request = request.model_copy(update={"steps": steps})
    rec = record_run(
        backend, request, timeout, signal=signal, signal_after=after, signal_timeout=bound
    )
    where = f"Step {after}" if after else "Started"
    if rec.signal is None:
        expect_event_order(rec, check)
        fail_check(rec, check, f"a {where} to send {signal}() after", "the run ended first")
    after_events = rec.events[rec.signal_index + 1 :]
    more_steps = [e for e in after_events if isinstance(e, Step)]
    if len(more_steps) > 1:
        fail_check(
            rec,
            check,
            f"at most one more Step after {signal}() (sent after {where})",
            f"{'' if rec.ended else 'at least '}{len(more_steps)} more: "
            f"steps {[s.step for s in more_steps]}",
            fix=CANCEL_FIX if signal == "cancel" else FINISH_FIX,
        )
    if signal == "cancel":
        expect_prompt_end(rec, check, after_events)
        return None
    expect_clean_signal(rec, check)
    others = [e for e in after_events if not isinstance(e, Step | Status)]
    finished = rec.finished
    if finished is None or len(others) != 1 or rec.events[-1] is not finished:
        fail_check(
            rec,
            check,
            f"Finished(early=True) right after {signal}() (at most one Step between)",
            ", ".join(describe_event(e) for e in after_events) or "nothing",
            fix=FINISH_FIX,
        )
    if not finished.early:
        fail_check(rec, check, "Finished.early=True for a run finished early", "early=False")
    expect_final_images(rec, check)
    expect_returned_in_time(rec, check, FINISH_FIX)
    return None


def expect_prompt_end(rec: Recording, check: str, after_events: list) -> None:
    """The end of a cancelled run: what came before the cancel kept the event order, nothing
    was raised, no Finished or Failed followed, and the generator returned within its limit."""
    expect_clean_signal(rec, check)
    restarted = [e for e in after_events if isinstance(e, Started)]
    if restarted:
        fail_check(rec, check, "Started exactly once, first", "a second Started after cancel()")
    ends = [e for e in after_events if isinstance(e, Finished | Failed)]
    if ends:
        fail_check(
            rec,
            check,
            "a cancelled run to simply stop yielding (no Finished or Failed)",
            describe_event(ends[0]),
            fix=CANCEL_FIX,
        )
    expect_returned_in_time(rec, check, CANCEL_FIX)


def expect_clean_signal(rec: Recording, check: str) -> None:
    """What came before the signal kept the event order, and the generator raised nothing."""
    before = rec.events[: rec.signal_index + 1]
    expect_event_order(
        Recording(
            rec.backend,
            rec.request,
            rec.capabilities,
            before,
            rec.times,
            ended=True,
            signal="cancel",
        ),
        check,
    )
    if rec.error is not None:
        fail_check(
            rec,
            check,
            f"the generator to return quietly after {rec.signal}()",
            f"it raised {type(rec.error).__name__}: {rec.error}",
        )


def expect_returned_in_time(rec: Recording, check: str, fix: str) -> None:
    """The generator returned within ``rec.signal_limit`` seconds of the signal."""
    limit, signal = rec.signal_limit, rec.signal
    if not rec.ended:
        fail_check(
            rec,
            check,
            f"the generator to return within {limit:.1f}s of {signal}()",
            "no return within the time limit" if rec.timed_out else "it kept running",
            fix=fix,
        )
    took = rec.end_time - rec.signal_time
    if took > limit:
        fail_check(
            rec,
            check,
            f"the generator to return within {limit:.1f}s of {signal}()"
            + (" (about one step)" if rec.signal_index and rec.steps else ""),
            f"it took {took:.1f}s",
            fix=fix,
        )
