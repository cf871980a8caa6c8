"""``astream``: ``stream`` for ``async def`` Gradio handlers, which cannot ``yield from`` a
plain generator, and must not iterate one on the event loop (it waits between steps).

Gradio runs a plain generator one item at a time on a worker thread: every frame it asks a
thread for the next value and waits to be called back. An async generator it awaits directly on
its event loop. ``astream`` runs ``stream``'s states on a thread of their own, which hands each
state to the loop as it comes, so a frame costs the server one wake-up of the loop instead of a
round trip to a worker thread (docs/benchmarks.md compares the two under load).

    async def generate(prompt):
        async for state in astream("diffusers", model="...", prompt=prompt):
            yield state

Everything else is ``stream``'s: validation, the policy, latest-wins previews, the run's owner
(the session of the event that started it), an error state then ``gradio.Error`` inside an
event. States are snapshots, so when the loop is slower than the run only the newest waits.
When Gradio closes the generator (Stop, ``cancels=[...]``, a closed tab), the run is cancelled
at once and its backend stops within a step.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .ownership import current_event, current_session
from .preview_encoding import DEFAULT_MAX_SIDE
from .run_engine import DEFAULT_MIN_INTERVAL, ENGINE
from .streaming import raise_failed, run_spec

if TYPE_CHECKING:
    from .backend import Backend
    from .plugins import Registry
    from .policy import Policy
    from .request import GenerationRequest
    from .run_state import RunState


async def astream(
    backend: str | Backend,
    request: GenerationRequest | dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    preview_max_side: int = DEFAULT_MAX_SIDE,
    policy: Policy | None = None,
    **fields: Any,
) -> AsyncIterator[RunState]:
    """Run ``request`` (or the request made of ``fields``) on ``backend`` and yield its states,
    as ``stream`` does, from an async generator (see the module's docstring)."""
    inbox = _NewestState(asyncio.get_running_loop())
    spec = run_spec(backend, request, fields, registry, policy, min_interval, preview_max_side)
    # the Gradio request's session owns the run, and its event started it
    handle = ENGINE.open(current_session(), current_event())
    states = ENGINE.states(spec, handle)
    context = contextvars.copy_context()  # the pump runs in the caller's (its Gradio request)
    threading.Thread(
        target=context.run, args=(_pump, states, inbox), name="gdp-astream", daemon=True
    ).start()
    try:
        while (state := await inbox.get()) is not None:
            yield state
            if state.status == "error":
                raise_failed(state)
    finally:
        inbox.stop()
        handle.cancel()  # at once, in any phase; False once the run has ended


def _pump(states: Iterator[RunState], inbox: _NewestState) -> None:
    """On the run's own thread: pull states and hand each to the loop until the consumer stops
    or the states end; closing ``states`` here runs the run's clean-up on this thread."""
    try:
        for state in states:
            if inbox.stopped:
                break
            inbox.put(state)
    except BaseException as error:  # a bug in the glue: the consumer re-raises it
        inbox.fail(error)
    finally:
        states.close()  # type: ignore[attr-defined]
        inbox.close()


class _NewestState:
    """One slot from a thread to an event loop: the newest state replaces one not yet taken
    (each state is a whole snapshot), and the loop is woken only when the slot fills."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._state: RunState | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.stopped = False

    def put(self, state: RunState) -> None:
        with self._lock:
            was_empty = self._state is None
            self._state = state
        if was_empty:
            self._wake()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            self._error = error
        self._wake()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake()

    def stop(self) -> None:
        """The consumer is gone: the pump stops at its next state."""
        self.stopped = True

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            self.stopped = True

    async def get(self) -> RunState | None:
        """The newest state, or None once the states have ended."""
        while True:
            with self._lock:
                state, self._state = self._state, None
                if state is not None:
                    return state
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return None
                self._ready.clear()
            await self._ready.wait()
