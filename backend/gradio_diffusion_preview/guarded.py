"""``stream`` under a ``Policy``: a visitor's request, admitted, queued fairly, timed, scrubbed.

The visitor's fields are checked against the catalogue and limits (``Policy.admit``), then the
backend's own rules (``validate_request``). The run takes a ticket in its backend's line
(``fair_queue``), showing its true position while it waits, runs under the policy's time limit,
and is owned by the visitor's Gradio session. Every state it yields names the model by its
catalogue id and carries no server path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .ownership import current_session
from .plugins import Registry, UnknownBackendError
from .progress import RUN_DURATIONS, ProgressClock
from .request import RunRefused, validate_request
from .state import RunState

if TYPE_CHECKING:
    from .fair_queue import RunGroup, Ticket
    from .policy import CatalogueEntry, Policy

WAIT_TICK_SECONDS = 1.0


def stream_guarded(
    backend_id: str,
    fields: dict[str, Any],
    policy: Policy,
    registry: Registry,
    min_interval: float,
    preview_max_side: int,
    group: RunGroup | None = None,
) -> Iterator[RunState]:
    """The states of a visitor's run under ``policy`` (see the module docstring); with a
    ``group``, the run is one of a session request's several runs (``compare``)."""
    from .streaming import _run

    entry: CatalogueEntry | None = None
    try:
        entry = policy.entry(backend_id, fields.get("model"))
        backend = registry.get(entry.backend)
        request = validate_request(policy.admit(entry, backend, fields), backend)
        policy.check_limits(backend.id, request)  # the defaults filled in, too
        expected = RUN_DURATIONS.expected(backend.id, request.model)
        ticket = policy.queue.join(backend.id, current_session(), expected, group)
    except (RunRefused, UnknownBackendError) as error:
        yield RunState(
            status="error",
            backend=backend_id,
            model=entry.id if entry else None,
            message=policy.scrub(str(error), entry),
            reason=getattr(error, "reason", "invalid_request"),
            retry_after=getattr(error, "retry_after", None),
        )
        return
    try:
        yield from _wait_turn(ticket, backend.id, entry.id, expected)
        for state in _run(
            backend,
            request,
            min_interval,
            preview_max_side,
            ticket.session,
            policy.limits.time_limit,
        ):
            yield _shown(state, entry, policy)
    finally:
        ticket.leave()


def _shown(state: RunState, entry: CatalogueEntry, policy: Policy) -> RunState:
    """The state as a visitor sees it: the model by its catalogue id, no server path."""
    update: dict[str, Any] = {"model": entry.id, "message": policy.scrub(state.message, entry)}
    params = getattr(state, "params", None)  # the run's settings, labelling its images
    if params is not None:
        update["params"] = params.model_copy(update={"model": entry.id})
    return state.model_copy(update=update)


def _wait_turn(
    ticket: Ticket, backend_id: str, entry_id: str, expected: float | None
) -> Iterator[RunState]:
    """Queued states, one per tick, until the ticket's turn comes (none if it starts at once)."""
    clock = ProgressClock()
    slots = max(1, ticket.queue.slots(backend_id))
    timeout = 0.0
    while not ticket.wait(timeout):
        timeout = WAIT_TICK_SECONDS
        position, waiting = ticket.position, ticket.waiting
        yield RunState(
            status="queued",
            backend=backend_id,
            model=entry_id,
            phase="queued",
            queue_position=position,
            queue_size=waiting,
            elapsed=clock.elapsed,
            eta=None if expected is None else expected * ((position - 1) // slots + 1),
            message=f"Waiting for your turn: {position} of {waiting} in line.",
        )
