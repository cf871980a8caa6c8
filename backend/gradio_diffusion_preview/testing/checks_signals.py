"""The checks of the two signals a user can send a running generation: ``cancel()`` (Stop)
and ``finish_early()`` ("Use this preview"). Each runs the backend, sends the signal part-way
and judges how quickly and how cleanly the run ends."""

from __future__ import annotations

from typing import Any

from ..backend import Backend
from ..events import Failed, Finished, Step
from .checks_events import expect_event_order, expect_final_images
from .defaults import DEFAULT_CANCEL_AFTER, DEFAULT_TIMEOUT
from .recording import Recording, fail_check, record_run, resolve_request
from .report import describe_event


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
    default about three step times, at least one second)."""
    if not backend.capabilities.cancel:
        return "capabilities.cancel is False"
    return check_signal(backend, "cancel", cancel_after, cancel_timeout, timeout, fields)


def check_finish_early(
    backend: Backend,
    *,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.finish_early()`` sent after Step ``cancel_after``: at most one more Step, then
    Finished with ``early=True`` and the requested images, promptly."""
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
    ``after`` of a run long enough to go on past it, and judge the end of the run."""
    check = signal
    request = resolve_request(backend, fields)
    high = backend.capabilities.steps_range[1]
    steps = max(request.steps, min(after + 2, high))
    after = min(after, steps - 2)
    if after < 1:
        return f"needs a run of at least 3 steps; the backend allows at most {high}"
    request = request.model_copy(update={"steps": steps})
    rec = record_run(
        backend, request, timeout, signal=signal, signal_after=after, signal_timeout=bound
    )
    if rec.signal is None:
        expect_event_order(rec, check)
        fail_check(rec, check, f"a Step {after} to send {signal}() after", "the run ended first")
    before = rec.events[: rec.signal_index + 1]
    expect_event_order(
        Recording(
            rec.backend, request, rec.capabilities, before, rec.times, ended=True, signal="cancel"
        ),
        check,
    )
    after_events = rec.events[rec.signal_index + 1 :]
    more_steps = [e for e in after_events if isinstance(e, Step)]
    limit = rec.signal_limit
    if len(more_steps) > 1:
        fail_check(
            rec,
            check,
            f"at most one more Step after {signal}() (sent after Step {after})",
            f"{'' if rec.ended else 'at least '}{len(more_steps)} more: "
            f"steps {[s.step for s in more_steps]}",
        )
    if rec.error is not None:
        fail_check(
            rec,
            check,
            f"the generator to return quietly after {signal}()",
            f"it raised {type(rec.error).__name__}: {rec.error}",
        )
    if signal == "cancel":
        ends = [e for e in after_events if isinstance(e, Finished | Failed)]
        if ends:
            fail_check(
                rec,
                check,
                "a cancelled run to simply stop yielding (no Finished or Failed)",
                describe_event(ends[0]),
            )
    else:
        others = [e for e in after_events if not isinstance(e, Step)]
        finished = rec.finished
        if finished is None or len(others) != 1 or rec.events[-1] is not finished:
            fail_check(
                rec,
                check,
                f"Finished(early=True) right after {signal}() (at most one Step between)",
                ", ".join(describe_event(e) for e in after_events) or "nothing",
            )
        if not finished.early:
            fail_check(rec, check, "Finished.early=True for a run finished early", "early=False")
        expect_final_images(rec, check)
    if not rec.ended:
        fail_check(
            rec,
            check,
            f"the generator to return within {limit:.1f}s of {signal}()",
            "no return within the time limit" if rec.timed_out else "it kept running",
        )
    took = rec.end_time - rec.signal_time
    if took > limit:
        fail_check(
            rec,
            check,
            f"the generator to return within {limit:.1f}s of {signal}() (about one step)",
            f"it took {took:.1f}s",
        )
    return None
