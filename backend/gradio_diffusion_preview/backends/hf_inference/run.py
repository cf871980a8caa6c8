"""One run of the hf-inference backend: ``Started``, ``Status`` while it waits, then
``Finished`` or one ``Failed``.

Each image of a batch is one ``text_to_image`` call (seeds ``seed``, ``seed + 1``, ...). A call
runs on its own thread (``call.InferenceCall``); this generator only waits, checking the
``RunControl`` every ``POLL`` seconds, so Stop ends the run at once even mid-request. The run
keeps its own deadline (``settings.timeout``, over every call and wait) and its own wait budget
(``settings.max_wait``, for loading models and rate limits); a retry that would overrun either
fails at once with ``retry_after``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import PIL.Image

from ...events import Failed, Finished, GenerationEvent, Started, Status
from .call import CallSpec, InferenceCall
from .failures import Retry, Where, classify
from .settings import HF_ROUTE, HfModel

if TYPE_CHECKING:
    from ...control import RunControl
    from ...request import GenerationRequest
    from .backend import HfInferenceBackend

POLL = 0.05
"""How often a waiting run looks at its control and its call (seconds)."""
BLACK_LEVEL = 4
"""An image whose brightest pixel is at most this is "black": a provider's safety filter."""


class InferenceRun:
    """The events of one request; iterate ``events()``."""

    def __init__(
        self, backend: HfInferenceBackend, request: GenerationRequest, control: RunControl
    ) -> None:
        self.backend, self.request, self.control = backend, request, control
        self.settings = backend.settings
        self.entry = backend.listing.entry(request.model) or HfModel(id=request.model)
        self.spec = self._spec()
        self.where = Where(request.model, self._route(), backend=backend.id)
        self._deadline = time.monotonic() + self.settings.timeout
        self._wait_left = self.settings.max_wait
        self._call: InferenceCall | None = None

    def events(self) -> Iterator[GenerationEvent]:
        request = self.request
        seeds = [(request.seed + i) % 2**32 for i in range(request.num_images)]
        yield Started(
            total_steps=request.steps,
            model=request.model,
            seeds=seeds,
            width=request.width,
            height=request.height,
            num_images=len(seeds),
            preview_size=None,
        )
        images: list[PIL.Image.Image] = []
        try:
            for index, seed in enumerate(seeds):
                outcome = yield from self._one_image(seed, index, len(seeds))
                if not isinstance(outcome, PIL.Image.Image):
                    if outcome is not None:
                        yield outcome
                    return
                images.append(outcome)
        finally:
            if self._call is not None:  # cancelled, failed or closed mid-call: abort it
                self._call.cancel()
        yield Finished(
            images,
            seeds,
            metadata={"model": request.model, "route": self.where.route},
        )

    def _one_image(
        self, seed: int, index: int, count: int
    ) -> Generator[GenerationEvent, None, PIL.Image.Image | Failed | None]:
        """Yields Status events; returns the image, a ``Failed``, or None when cancelled."""
        which = f" (image {index + 1} of {count})" if count > 1 else ""
        while True:
            yield Status("generating", f"Generating on Hugging Face Inference{which}…")
            call = InferenceCall(
                self._with_seed(seed), self.backend.token, self._time_left() + 1.0
            ).start()
            self._call = call
            ended = self._wait_for(call)
            if ended != "finished":
                call.cancel()
                return self._timed_out() if ended == "deadline" else None
            self._call = None
            where = dataclasses.replace(self.where, token=call.token_used)
            if call.error is None and call.image is not None:
                return self._checked(call.image, where)
            outcome = classify(call.error, where, min(self._wait_left, self._time_left()))
            if isinstance(outcome, Failed):
                return outcome
            yield self._waiting(outcome, which)
            started = time.monotonic()
            if self.control.wait_cancelled(outcome.after):
                return None
            self._wait_left -= time.monotonic() - started
            if self._time_left() <= 0:
                return self._timed_out()

    def _wait_for(self, call: InferenceCall) -> str:
        """Wait for the call: "finished", "cancelled" or "deadline"."""
        while not call.finished.wait(POLL):
            if self.control.cancelled:
                return "cancelled"
            if self._time_left() <= 0:
                return "deadline"
        return "cancelled" if self.control.cancelled else "finished"

    def _waiting(self, retry: Retry, which: str) -> Status:
        return Status(retry.phase, retry.message.rstrip("…") + f"{which}…", eta=retry.eta)

    def _checked(self, image: PIL.Image.Image, where: Where) -> PIL.Image.Image | Failed:
        if max(high for _, high in image.getextrema()) <= BLACK_LEVEL:
            return Failed(
                f"Hugging Face Inference returned a black image for '{where.model}' "
                f"({where.route}): the provider's safety filter blocked this prompt. Fix: "
                "rephrase the prompt, or try another seed or model.",
                "content_filtered",
            )
        return image

    def _timed_out(self) -> Failed:
        return Failed(
            f"Hugging Face Inference did not finish '{self.where.model}' ({self.where.route}) "
            f"within {self.settings.timeout:g} s. Fix: try again, or fewer steps, a smaller "
            "image or a faster model.",
            "timeout",
        )

    def _time_left(self) -> float:
        return self._deadline - time.monotonic()

    def _route(self) -> str:
        """How the model is reached, for messages (never an address: those stay private)."""
        if self.entry.url:
            return "its Inference Endpoint"
        if self.settings.router_url:
            return f"{HF_ROUTE}, through the configured router"
        return f"provider {self.entry.provider or self.settings.provider}"

    def _spec(self) -> CallSpec:
        """The call for this model: its endpoint URL, the configured router's hf-inference
        route, or the model id with its provider (Hugging Face's routing)."""
        request, entry, settings = self.request, self.entry, self.settings
        provider = entry.provider or settings.provider
        if entry.url:
            model, provider = entry.url, None
        elif settings.router_url:
            model, provider = f"{settings.router_url}/{HF_ROUTE}/models/{entry.id}", None
        else:
            model = entry.id
        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "width": request.width,
            "height": request.height,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
        }
        extra = {**request.options.get("parameters", {}), **entry.parameters}
        if extra:
            arguments["extra_body"] = extra
        return CallSpec(
            model=model,
            provider=None if provider == "auto" else provider,
            arguments=arguments,
            bill_to=settings.bill_to,
            needs_token=not (entry.url or settings.router_url),
        )

    def _with_seed(self, seed: int) -> CallSpec:
        spec = self.spec
        return CallSpec(
            spec.model,
            spec.provider,
            {**spec.arguments, "seed": seed},
            spec.bill_to,
            spec.needs_token,
        )
