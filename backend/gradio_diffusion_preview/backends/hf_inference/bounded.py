"""Stop and the run's deadline reach huggingface_hub's own downloads and polls.

huggingface_hub's provider helpers (fal-ai and replicate fetch the image by URL, wavespeed and
zai-org poll, then fetch) run in a library thread (``asyncio.to_thread``) on its shared
synchronous client (``get_session()``, no timeout): cancelling our call's task does not reach
them. So each client that huggingface_hub's client factory makes gets two event hooks (httpx's
public ``event_hooks``) that read a ``Bound`` from a context variable, set by our call for its
own task and copied by ``asyncio.to_thread`` into the library thread:

- before every request (each poll, each image GET, each redirect): a stopped call raises
  ``CallAbandoned``, a call past its deadline ``DeadlinePassed``; otherwise the request's
  timeouts become at most the time left, so no read waits past the deadline;
- on every response: its body is read through ``BoundedStream``, which checks the same before
  each chunk, so a stopped download reads no further chunk (the one in flight ends or times
  out at the deadline).

Outside our calls the variable is unset and the hooks do nothing. ``install`` wraps the factory
huggingface_hub holds now (an app's own, set with ``set_client_factory``, included), so it
chains to it rather than replacing it; an app that sets its own factory later is wrapped again
at our next call. huggingface_hub has no public way to read the current factory: where its
module attribute is missing (a future version), nothing is installed and downloads run to
their end, as before.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2  # imported with this module, which call.py imports only when a call runs

_CURRENT: contextvars.ContextVar[Bound | None] = contextvars.ContextVar(
    "gdp_hf_inference_bound", default=None
)
_LOCK = threading.Lock()


class CallAbandoned(RuntimeError):
    """The run was stopped: huggingface_hub's request or download is abandoned."""


class DeadlinePassed(TimeoutError):
    """The run's deadline passed before huggingface_hub's request or download ended."""


@dataclass(frozen=True)
class Bound:
    """One call's limits: ``stopped()`` is true once the run stopped or gave up on it;
    ``deadline`` is on ``clock``'s scale."""

    stopped: Callable[[], bool]
    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic)

    def left(self) -> float:
        """Seconds left; raises once stopped or past the deadline."""
        if self.stopped():
            raise CallAbandoned("the run was stopped")
        left = self.deadline - self.clock()
        if left <= 0:
            raise DeadlinePassed("the run's deadline passed")
        return left


def bound(limits: Bound) -> None:
    """Bound huggingface_hub's requests made in the current context by ``limits``: our call
    sets it in its own task, whose context ends with it (``asyncio.to_thread`` copies it into
    the library thread)."""
    _CURRENT.set(limits)


def _on_request(request: Any) -> None:
    limits = _CURRENT.get()
    if limits is None:
        return
    left = limits.left()
    timeouts = dict(request.extensions.get("timeout") or {})
    for key in ("connect", "read", "write", "pool"):
        value = timeouts.get(key)
        timeouts[key] = left if value is None else min(value, left)
    request.extensions["timeout"] = timeouts


def _on_response(response: Any) -> None:
    limits = _CURRENT.get()
    if limits is not None:
        response.stream = BoundedStream(response.stream, limits)


class BoundedStream(httpx2.SyncByteStream):
    """A response body read chunk by chunk, each only while the call is neither stopped nor
    past its deadline."""

    def __init__(self, inner: Any, limits: Bound) -> None:
        self.inner, self.limits = inner, limits

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.inner)
        while True:
            self.limits.left()
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            yield chunk

    def close(self) -> None:
        self.inner.close()


class BoundedFactory:
    """huggingface_hub's client factory ``inner``, its clients with the two hooks added."""

    def __init__(self, inner: Callable[[], Any]) -> None:
        self.inner = inner

    def __call__(self) -> Any:
        client = self.inner()
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks.get("request", []), _on_request],
            "response": [*hooks.get("response", []), _on_response],
        }
        return client


def install() -> bool:
    """Wrap huggingface_hub's current client factory (once; again if an app replaced it);
    False where the current factory cannot be read, and nothing is installed."""
    from huggingface_hub.utils import _http

    with _LOCK:
        current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
        if current is None:
            return False
        if not isinstance(current, BoundedFactory):
            # Closes the shared client once: the next get_session() makes a bounded one.
            _http.set_client_factory(BoundedFactory(current))
        return True
