"""BackendRunner: drives a backend's ``generate`` on its own thread into an ``EventChannel``.

The generation thread never waits for the consumer. The backend's ``generate`` is called on that
thread too, so an exception escaping it, whether it is a generator or a plain function that
raises before returning one, becomes a ``Failed`` event naming the backend, and the server keeps
serving. On cancel the runner stops pulling and closes the backend's generator, so its
``finally`` blocks run; a backend that passes the cancel on to a service (``cancel_confirms``)
is pulled on until it returns or yields the service's answer, ``Cancelled``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from .channel import EventChannel
from .control import RunControl
from .events import Cancelled, Failed, Finished, GenerationEvent, Step

log = logging.getLogger(__name__)


class BackendRunner:
    """Runs one generation: ``generate()`` (e.g. ``lambda: backend.generate(request, control)``)
    and the events it yields. Start it, read ``channel``, and ``stop()`` it when done."""

    def __init__(
        self,
        backend_id: str,
        generate: Callable[[], Iterable[GenerationEvent]],
        control: RunControl,
        min_interval: float = 0.0,
        on_end: Callable[[], None] | None = None,
        confirms_cancel: bool = False,
    ) -> None:
        """``on_end`` is called on the runner's thread once the backend's run has ended and
        its last event is in the channel, whoever reads it (or nobody: a consumer that went
        away without closing its states, such as a server closed under its stream)."""
        self.backend_id = backend_id
        self._on_end = on_end
        self.confirms_cancel = confirms_cancel
        self.control = control
        self.channel = EventChannel(min_interval)
        self.steps_produced = 0
        self._generate = generate
        self._events: Iterator[GenerationEvent] | None = None
        # The backend runs in the caller's context (its Gradio request), e.g. for ZeroGPU to
        # charge the visitor's own GPU quota.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"gdp-{backend_id}", daemon=True
        )

    def start(self) -> BackendRunner:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the run and wait (up to ``timeout``) for the backend to wind down."""
        self.control.cancel()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._events = iter(self._generate())
            for event in self._events:
                if self.control.cancelled and not self.confirms_cancel:
                    break
                if self.control.cancelled and not isinstance(event, Cancelled):
                    continue  # a backend passing the cancel on: only its answer counts now
                if isinstance(event, Cancelled) and not self.control.cancelled:
                    continue  # an answer to no cancel (the kit reports it)
                if isinstance(event, Step):
                    self.steps_produced += 1
                self.channel.put(event)
                if isinstance(event, Finished | Failed | Cancelled):
                    break
        except MemoryError:  # out of memory is the request's size, not the backend's bug
            log.exception("backend %r ran out of memory", self.backend_id)
            self.channel.put(
                Failed(
                    f"Backend '{self.backend_id}' ran out of memory. Fix: ask for a smaller "
                    "size or fewer images.",
                    "out_of_memory",
                )
            )
        except Exception as error:  # a plugin's bug must not take the server down
            log.exception("backend %r raised", self.backend_id)
            self.channel.put(
                Failed(
                    f"Backend '{self.backend_id}' raised {type(error).__name__}: {error}. "
                    "This is a bug in the backend; report it to its authors.",
                )
            )
        finally:
            close = getattr(self._events, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("backend %r failed while closing", self.backend_id)
            self.channel.close()
            if self._on_end is not None:
                try:
                    self._on_end()
                except Exception:
                    log.exception("the end of backend %r's run failed", self.backend_id)
