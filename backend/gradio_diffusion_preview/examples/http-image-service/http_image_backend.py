"""A backend without previews: it asks an HTTP image service for each image and reports what
it is waiting for with Status events. The built-in hf-inference backend follows the same
pattern against the Hugging Face Inference API.

The service reports no denoising steps, so the backend declares ``step_events=False`` and never
invents Steps. Its HTTP call blocks, so it runs on a worker thread while ``generate`` waits in
short slices of ``control.wait_cancelled``, which wake at once on cancel.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import quote

import PIL.Image

from gradio_diffusion_preview import (
    Availability,
    Backend,
    Capabilities,
    Failed,
    FailureReason,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ModelDefaults,
    ModelInfo,
    RunControl,
    Started,
    Status,
)

if TYPE_CHECKING:
    import httpx

URL_VARIABLE = "EXAMPLE_IMAGE_SERVICE_URL"

# What each of the service's error statuses means for a caller (see docs/plugins.md).
REASONS: dict[int, FailureReason] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "unauthorized",
    404: "model_not_found",
    422: "content_filtered",  # this service's way of saying its content filter refused
    429: "rate_limited",
    503: "unavailable",
}
FIXES: dict[str, str] = {
    "invalid_request": "Fix: change the request as the message says.",
    "unauthorized": "Fix: pass the service's token to HttpImageBackend(token=...).",
    "model_not_found": "Fix: choose one of the models the backend lists.",
    "content_filtered": "Fix: change the prompt.",
    "rate_limited": "Fix: wait, then try again.",
    "unavailable": "Fix: try again later.",
    "remote_error": "Fix: try again; if it persists, tell the service's operators.",
}


class ServiceError(Exception):
    """The service refused or could not be reached: a message, a reason, and maybe a wait."""

    def __init__(
        self, message: str, reason: FailureReason, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.reason, self.retry_after = reason, retry_after


class HttpImageBackend(Backend):
    """Images from the HTTP image service at ``url`` (or $EXAMPLE_IMAGE_SERVICE_URL)."""

    id = "example-http"
    display_name = "Example: HTTP image service"
    location = "remote"
    capabilities = Capabilities(
        step_events=False,  # the service reports no steps: Status events instead
        step_previews=False,  # so there is nothing to preview either
        negative_prompt=False,
        guidance=False,
        min_size=64,
        max_size=1024,
        default_size=(512, 512),
        steps_range=(1, 50),
        default_steps=20,
        max_batch=4,
    )

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 60.0
    ) -> None:
        self.url = (url if url is not None else os.environ.get(URL_VARIABLE, "")).rstrip("/")
        self.token, self.timeout = token, timeout
        # Blocking HTTP calls run here; a cancelled run's call finishes on its own, unread.
        self._calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="example-http")

    def availability(self) -> Availability:
        # Asked before every run: decide from configuration alone, never over the network.
        if not self.url:
            return Availability(
                state="not_configured",
                message=f"Set {URL_VARIABLE} to the image service's address "
                "(e.g. http://127.0.0.1:8765).",
            )
        return Availability()

    def models(self) -> list[ModelInfo]:
        # May do I/O: list_models() reuses the listing for a minute, and turns an error
        # here into "unavailable" for the runs that need it.
        listed = self._call("GET", "/models").json()
        return [
            ModelInfo(
                id=model["id"],
                name=model["name"],
                defaults=ModelDefaults(
                    steps_range=tuple(model["steps"]), default_steps=model["default_steps"]
                ),
            )
            for model in listed
        ]

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        seeds = request.image_seeds()  # image i: (seed + i) % 2**32
        yield Started(
            request.steps, request.model, seeds, request.width, request.height, len(seeds)
        )
        images = []
        for number, seed in enumerate(seeds, start=1):
            yield Status("generating", f"Drawing image {number} of {len(seeds)}…")
            call = self._calls.submit(self._draw, request, seed)
            while not call.done():
                if control.wait_cancelled(0.05):
                    return  # cancelled: no Finished, no Failed
            try:
                images.append(call.result())
            except ServiceError as error:
                yield Failed(str(error), error.reason, error.retry_after)
                return
        yield Finished(images, seeds)

    def _draw(self, request: GenerationRequest, seed: int) -> PIL.Image.Image:
        """One image from the service (on a worker thread)."""
        parameters = {
            "width": request.width,
            "height": request.height,
            "num_inference_steps": request.steps,
            "seed": seed,
        }
        # The model is one the service listed (validation checked), quoted all the same.
        path = f"/models/{quote(request.model, safe='')}"
        response = self._call(
            "POST", path, json={"inputs": request.prompt, "parameters": parameters}
        )
        try:
            return PIL.Image.open(io.BytesIO(response.content)).convert("RGB")
        except PIL.UnidentifiedImageError:
            raise ServiceError(
                "The image service answered without an image. " + FIXES["remote_error"],
                "remote_error",
            ) from None

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One HTTP call; any failure becomes a ``ServiceError`` with its reason."""
        import httpx  # imported when first needed, not when the plugin loads

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except httpx.TimeoutException:
            raise ServiceError(
                f"The image service at {self.url} did not answer within {self.timeout:g}s. "
                + FIXES["unavailable"],
                "timeout",
            ) from None
        except httpx.TransportError as error:
            raise ServiceError(
                f"Cannot reach the image service at {self.url} ({type(error).__name__}). "
                f"Fix: start it, or set {URL_VARIABLE} to its address.",
                "unavailable",
            ) from None
        if response.is_success:
            return response
        try:
            said = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            said = response.reason_phrase
        reason = REASONS.get(response.status_code, "remote_error")
        raise ServiceError(
            f"The image service answered {response.status_code}: {said}. {FIXES[reason]}",
            reason,
            retry_after(response.headers.get("Retry-After")),
        )


def retry_after(header: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (its HTTP-date form is left out here)."""
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None
