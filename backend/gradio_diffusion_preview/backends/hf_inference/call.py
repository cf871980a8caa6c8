"""One ``text_to_image`` call, on its own thread, that can be abandoned at any moment.

The call uses huggingface_hub's ``AsyncInferenceClient`` (the same ``text_to_image`` as
``InferenceClient``, with the same request and errors) on a private event loop in a daemon
thread. The run's generator never blocks on it: it polls ``finished`` and its own
``RunControl``. ``cancel()`` cancels the task, which aborts the HTTP request and closes the
client's own connection pool (``async with``), so a stopped run leaves no request behind; a
result that arrives after that is dropped with the thread.

Why not the sync ``InferenceClient``: it sends through huggingface_hub's shared session, so an
in-flight request could only be abandoned (its thread waits for the server), never aborted.
The synchronous steps inside ``text_to_image`` (the Hub look-ups of "auto" routing, and the
provider helper that fetches the image by URL or polls, in a library thread) do use that shared
session: ``bounded`` makes each of their requests and each chunk of a body check the call's
cancel and its deadline (the call's ``timeout`` from its start), so a cancelled call sends no
further request and reads no further chunk, and no read waits past the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import PIL.Image
from pydantic import SecretStr

from . import editing, routing
from .tokens import resolve_token

_numbers = itertools.count(1)


class MissingToken(RuntimeError):
    """No token was given in code or found by huggingface_hub's discovery."""


@dataclass(frozen=True)
class CallSpec:
    """What to ask for: ``model`` is a repo id (routed by ``provider``) or an http(s) URL
    (POSTed as is by the hf-inference protocol); ``arguments`` are ``text_to_image``'s, or with
    ``image`` (an edit: the input's PNG bytes) ``editing.edit_arguments``', sent by
    ``image_to_image`` once the provider is known."""

    model: str
    provider: str | None
    arguments: dict[str, Any]
    bill_to: str | None = None
    needs_token: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    image: bytes | None = None

    @property
    def task(self) -> str:
        return routing.TASK if self.image is None else editing.TASK


class InferenceCall:
    """Runs ``spec`` once; read ``image`` or ``error`` after ``finished`` is set."""

    def __init__(
        self,
        spec: CallSpec,
        token: SecretStr | None,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.timeout = timeout
        self.clock = clock
        """The clock of the call's deadline (``timeout`` after ``start``)."""
        self.deadline = math.inf
        self.finished = threading.Event()
        self.image: PIL.Image.Image | None = None
        self.error: BaseException | None = None
        self.token_used: str | None = None
        self.provider_used: str | None = spec.provider
        """The provider actually called ("auto" resolved), for messages; None for a URL."""
        self.skipped: tuple[str, ...] = ()
        """Providers of the model's mapping that "auto" passed over, each with why."""
        self._code_token = token
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._cancelled = False
        self._thread = threading.Thread(
            target=self._run, name=f"gdp-hf-inference-call-{next(_numbers)}", daemon=True
        )

    def start(self) -> InferenceCall:
        self.deadline = self.clock() + self.timeout
        self._thread.start()
        return self

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def cancel(self) -> None:
        """Abort the request (from any thread); the thread then ends on its own."""
        with self._lock:
            self._cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the call is over
                loop.call_soon_threadsafe(task.cancel)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # reported to the run, which classifies it
            self.error = error
        finally:
            self.finished.set()

    async def _main(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        from . import bounded

        bounded.install()
        # This task's context, and the library threads it starts (asyncio.to_thread copies it).
        bounded.bound(bounded.Bound(lambda: self._cancelled, self.deadline, self.clock))
        token = resolve_token(self._code_token)
        self.token_used = token
        if token is None and self.spec.needs_token:
            raise MissingToken("no Hugging Face token was given or found")
        by_mapping = not self.spec.model.startswith(("http://", "https://"))
        try:
            image = await self._routed(token, by_mapping)
        except Exception as error:
            if not (by_mapping and _gone(error)):
                raise
            # The provider left the model's mapping (404/410): drop the cached mapping and
            # route once more, by what the Hub lists now.
            routing.forget(self.spec.model)
            image = await self._routed(token, by_mapping)
        image.load()  # decode here, off the run's thread; the bytes stay in memory
        self.image = image if image.mode == "RGB" else image.convert("RGB")

    async def _routed(self, token: str | None, by_mapping: bool) -> PIL.Image.Image:
        """One ``text_to_image`` (or, with an input image, ``image_to_image``) call, "auto"
        resolved to a provider this client can call for the task."""
        from huggingface_hub import AsyncInferenceClient

        provider = self.spec.provider
        if provider is None and by_mapping:
            route = routing.choose(self.spec.model, self.spec.task)
            provider, self.skipped = route.provider, route.skipped
        self.provider_used = provider
        async with AsyncInferenceClient(
            provider=provider,
            token=token,
            timeout=self.timeout,
            bill_to=self.spec.bill_to,
            headers=self.spec.headers or None,
        ) as client:
            if self.spec.image is not None:
                arguments = editing.for_provider(self.spec.arguments, provider)
                return await client.image_to_image(
                    self.spec.image, model=self.spec.model, **arguments
                )
            return await client.text_to_image(model=self.spec.model, **self.spec.arguments)


def _gone(error: BaseException) -> bool:
    """True for an HTTP 404 or 410 from the provider's route."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) in (404, 410)
