"""The checks of the two signals a user can send a running generation: ``cancel()`` (Stop)
and ``finish_early()`` ("Use this preview"). Each runs the backend, sends the signal part-way
(after a Step, or right after Started, where a backend that waits on a service spends its time)
and judges the end of the run by what the backend did after the signal: the events pulled from
its generator until it returned, counted.

Seconds are never the measure, so a busy machine cannot fail a good backend: the only clock is
a generous ceiling (``hang_ceiling``) that catches a run that never ends. A run that got to its
last step before the signal took effect (a backend whose generation runs ahead of the kit's
pulls, on a machine that delays the kit) says nothing about the backend, so a check that fails
on such a run runs it again, four times as long, up to ``SIGNAL_RUNS`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backend import Backend
from ..events import Cancelled, Failed, Finished, ImageReady, Started, Status, Step
from ..request import GenerationRequest
from .checks_events import expect_event_order, expect_final_images
from .defaults import DEFAULT_CANCEL_AFTER, DEFAULT_TIMEOUT, capabilities_for_run
from .recording import Recording, fail_check, hang_ceiling, record_run, resolve_request
from .report import ConformanceError, describe_event

SIGNAL_RUNS = 3
"""Runs a signal check makes at most: one, and a longer one each time a run that reached its
last step before the signal took effect fails the check."""
LONGER = 4
"""How many times as many steps the next run of a signal check asks for."""

CANCEL_FIX = (
    "check control.cancelled once per step or wait, and wait with "
    "control.wait_cancelled(seconds) (it wakes at once on cancel), never time.sleep; run a "
    "blocking call (an HTTP request) on a worker thread and wait for it in short "
    "control.wait_cancelled slices; then return, with no Finished or Failed (a backend that "
    "passes the cancel on to a service ends with Cancelled(acknowledged, detail) instead)"
)
FINISH_FIX = (
    "check control.finish_requested once per step and answer it with your current estimate "
    "as Finished(images, seeds, early=True)"
)


STEPS_AFTER_SIGNAL = 2
"""Steps a backend may report after a cancel or finish_early: the step in flight when the
signal came, and one it may have finished while the signal was on its way (a backend whose
steps run on a thread of their own hands the kit a step it finished before the kit, reading the
one before, could send the signal; on a busy machine that gap is long). A backend that goes on
any longer has ignored the signal."""


def check_cancel(
    backend: Backend,
    *,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.cancel()`` sent after Step ``cancel_after``: of the events pulled from the
    generator after it, at most two Steps (the one in flight, and one the backend may have
    finished while the signal was on its way: a backend whose steps run on a thread of their
    own can be a step ahead of the kit reading them) and no Finished or Failed, then the
    generator returns (with ``cancel_confirms``, after one Cancelled, the service's answer).
    Judged by steps, not seconds: ``cancel_timeout`` is only the ceiling that catches a hang
    (by default 30 s, or ten of the run's step times if longer), and a run that reached its
    last step before the signal took effect is run again, four times as long. A backend that
    reports no steps (``step_events=False``) is checked by ``check_cancel_at_start`` instead."""
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
    spends its time): of the events pulled from the generator after it, at most one Step or
    Status and no Finished or Failed, then the generator returns. Judged by events, not
    seconds: ``cancel_timeout`` is only the ceiling that catches a hang (by default 30 s, or,
    when an ordinary run is given as ``reference``, ten of its step times if longer)."""
    if not backend.capabilities.cancel:
        return "capabilities.cancel is False"
    ceiling = cancel_timeout
    if ceiling is None:
        ceiling = hang_ceiling(*([reference] if reference is not None else []))
    request = resolve_request(backend, fields)

    def judge(rec: Recording) -> None:
        check = "cancel_at_start"
        if rec.signal is None:
            expect_event_order(rec, check, allow_failed=True)
            fail_check(
                rec,
                check,
                "a Started event to send cancel() after",
                "none",
                fix="yield Started(...) before waiting on anything, so a user can stop the run",
            )
        after_events = [e for e in rec.after_signal if not isinstance(e, Cancelled)]
        if len(after_events) > 1:
            fail_check(
                rec,
                check,
                "at most one more Step or Status after cancel() (sent right after Started)",
                f"{'' if rec.ended else 'at least '}{len(after_events)} more: "
                + ", ".join(describe_event(e) for e in after_events[:4]),
                fix=CANCEL_FIX,
            )
        expect_quiet_end(rec, check)

    return judge_runs(backend, request, "cancel", 0, ceiling, timeout, judge)


def check_finish_early(
    backend: Backend,
    *,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> str | None:
    """``control.finish_early()`` sent after Step ``cancel_after`` (right after Started for a
    backend with ``step_events=False``): of the events pulled from the generator after it, at
    most two Steps (as for ``check_cancel``), then Finished with ``early=True`` and the
    requested images, then the generator returns. Judged by steps, not seconds, as
    ``check_cancel`` is."""
    if not backend.capabilities.finish_early:
        return "capabilities.finish_early is False"
    return check_signal(backend, "finish_early", cancel_after, cancel_timeout, timeout, fields)


def check_signal(
    backend: Backend,
    signal: str,
    after: int,
    ceiling: float | None,
    timeout: float,
    fields: dict[str, Any],
) -> str | None:
    """Send ``signal`` ("cancel" or "finish_early", also the check's name) after Step
    ``after`` of a run long enough to go on past it (right after Started for a backend that
    reports no steps), and judge what the backend did after it."""
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
    where = f"Step {after}" if after else "Started"
    fix = CANCEL_FIX if signal == "cancel" else FINISH_FIX

    def judge(rec: Recording) -> None:
        if rec.signal is None:
            expect_event_order(rec, check)
            fail_check(
                rec,
                check,
                f"a {where} to send {signal}() after",
                "the run ended first",
                fix="yield each Step as it is done (not all at the end); a backend with few "
                "steps passes the kit a larger steps=... request",
            )
        after_events = rec.after_signal
        more_steps = [e for e in after_events if isinstance(e, Step)]
        if len(more_steps) > STEPS_AFTER_SIGNAL:
            fail_check(
                rec,
                check,
                f"at most two more Steps after {signal}() (sent after {where}: one the backend "
                "may have finished as it was sent, and the one in flight)",
                f"{'' if rec.ended else 'at least '}{len(more_steps)} more: "
                f"steps {[s.step for s in more_steps]}",
                fix=fix,
            )
        if signal == "cancel":
            expect_quiet_end(rec, check)
            return
        expect_clean_signal(rec, check)
        others = [e for e in after_events if not isinstance(e, Step | Status | ImageReady)]
        finished = rec.finished
        if finished is None or len(others) != 1 or rec.events[-1] is not finished:
            fail_check(
                rec,
                check,
                f"Finished(early=True) right after {signal}() (at most two Steps between)",
                ", ".join(describe_event(e) for e in after_events) or "nothing",
                fix=fix,
            )
        if not finished.early:
            fail_check(
                rec,
                check,
                "Finished.early=True for a run finished early",
                "early=False",
                fix=FINISH_FIX,
            )
        expect_final_images(rec, check)
        expect_returned(rec, check, fix)

    return judge_runs(backend, request, signal, after, ceiling, timeout, judge)


def judge_runs(
    backend: Backend,
    request: GenerationRequest,
    signal: str,
    after: int,
    ceiling: float | None,
    timeout: float,
    judge: Callable[[Recording], None],
) -> None:
    """Run ``request`` with ``signal`` sent after Step ``after`` and ``judge`` the recording;
    when it fails on a run that reached its last step (or never came to the signal), run it
    again ``LONGER`` times as long, within the model's steps, up to ``SIGNAL_RUNS`` runs."""
    high = capabilities_for_run(backend, request.model).steps_range[1]
    for attempt in range(1, SIGNAL_RUNS + 1):
        rec = record_run(
            backend, request, timeout, signal=signal, signal_after=after, signal_timeout=ceiling
        )
        try:
            judge(rec)
            return None
        except ConformanceError:
            longer = min(high, LONGER * (request.steps or 1))
            too_late = rec.signal is None or rec.reached_last_step
            if attempt == SIGNAL_RUNS or not too_late or not backend.capabilities.step_events:
                raise
            if longer <= (request.steps or 1):
                raise
            request = request.model_copy(update={"steps": longer})
    return None


def expect_quiet_end(rec: Recording, check: str) -> None:
    """The end of a cancelled run: what came before the cancel kept the event order, nothing
    was raised, no Started, Finished or Failed followed, and the generator returned."""
    expect_clean_signal(rec, check)
    after_events = rec.after_signal
    if any(isinstance(e, Started) for e in after_events):
        fail_check(
            rec,
            check,
            "Started exactly once, first",
            "a second Started after cancel()",
            fix=CANCEL_FIX,
        )
    ends = [e for e in after_events if isinstance(e, Finished | Failed)]
    if ends:
        fail_check(
            rec,
            check,
            "a cancelled run to simply stop yielding (no Finished or Failed)",
            describe_event(ends[0]),
            fix=CANCEL_FIX,
        )
    expect_cancel_answer(rec, check)
    expect_returned(rec, check, CANCEL_FIX)


CONFIRM_FIX = (
    "after control.cancelled, pass the cancel on to the service (with a bounded timeout) and "
    "yield one Cancelled(acknowledged, detail) as the run's last event: acknowledged=True when "
    "the service stopped the job, False when it refused or could not be reached; a backend "
    "that does not pass cancels on declares Capabilities(cancel_confirms=False) and just returns"
)


def expect_cancel_answer(rec: Recording, check: str) -> None:
    """A cancelled run's ``Cancelled``: at most one, the last event, with a bool
    ``acknowledged`` and a str ``detail``; and one there must be when the backend declares
    ``cancel_confirms`` and its generator returned."""
    answers = [e for e in rec.after_signal if isinstance(e, Cancelled)]
    if len(answers) > 1 or (answers and rec.events[-1] is not answers[0]):
        fail_check(
            rec,
            check,
            "one Cancelled, as the cancelled run's last event",
            ", ".join(describe_event(e) for e in rec.after_signal[:5]),
            fix=CONFIRM_FIX,
        )
    for answer in answers:
        if not isinstance(answer.acknowledged, bool) or not isinstance(answer.detail, str):
            fail_check(
                rec,
                check,
                "Cancelled(acknowledged: bool, detail: str)",
                describe_event(answer),
                fix=CONFIRM_FIX,
            )
    if rec.capabilities.cancel_confirms and rec.ended and not answers:
        fail_check(
            rec,
            check,
            "Cancelled(acknowledged, detail) to end the cancelled run, as "
            "Capabilities(cancel_confirms=True) says",
            "the generator returned without one",
            fix=CONFIRM_FIX,
        )


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
            fix="on cancel, return from generate; on finish early, yield Finished(early=True); "
            "catch what a stopped request raises (an aborted HTTP call) inside generate",
        )


def expect_returned(rec: Recording, check: str, fix: str) -> None:
    """The generator returned after the signal, before the ceiling that catches a hang."""
    if not rec.ended:
        fail_check(
            rec,
            check,
            f"the generator to return after {rec.signal}() (a run that has not ended "
            f"{rec.signal_ceiling:g}s after it counts as hung)",
            f"no return {rec.end_time - rec.signal_time:.1f}s after it, when the kit gave up"
            if rec.timed_out
            else "it kept yielding events",
            fix=fix,
        )
