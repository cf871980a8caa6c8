"""What went wrong with a call, for people and for code: each exception huggingface_hub (or its
HTTP stack, httpx2) can raise becomes either a ``Retry`` (a model loading, a rate limit that
passes within the run's wait budget) or a ``Failed`` with its reason, a message naming the fix,
and ``retry_after`` when the service said when to come back.

The exceptions, as huggingface_hub 2.4 raises them (see /work/shared/REMOTE_PROTOCOLS.md):
``HfHubHTTPError`` with the response for any HTTP error (the body is read, so a 503's
``estimated_time`` and a 429's headers are there), ``InferenceTimeoutError`` for a timeout,
raw ``httpx2`` transport errors for refused or dropped connections, ``OfflineModeIsEnabled``
under ``HF_HUB_OFFLINE``, ``PIL.UnidentifiedImageError`` for a body that is not an image,
``ValueError``/``StopIteration`` from provider routing. Every message is redacted.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from ...events import Failed, Phase
from .call import MissingToken
from .routing import NoProvider
from .tokens import TOKEN_HELP, redact

MAX_SERVER_TEXT = 300
LOADING_POLL = 10.0
"""Retry a loading model at least this often, whatever its estimate."""


@dataclass(frozen=True)
class Retry:
    """Wait ``after`` seconds (showing ``phase`` and ``message``), then try again."""

    after: float
    phase: Phase
    message: str
    eta: float | None = None


@dataclass(frozen=True)
class Where:
    """Who was asked, for messages: the model and the route ("provider auto", an URL)."""

    model: str
    route: str
    token: str | None = None
    backend: str = "hf-inference"


def classify(error: BaseException, where: Where, wait_left: float) -> Retry | Failed:
    """The ``Retry`` or ``Failed`` for ``error``; a retry longer than ``wait_left`` fails."""
    outcome = _classify(error, where, wait_left)
    if isinstance(outcome, Failed):
        return Failed(redact(outcome.message, where.token), outcome.reason, outcome.retry_after)
    return outcome


def _classify(error: BaseException, where: Where, wait_left: float) -> Retry | Failed:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        InferenceTimeoutError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )
    from PIL import UnidentifiedImageError

    from .bounded import DeadlinePassed

    asked = f"'{where.model}' ({where.route})"
    if isinstance(error, DeadlinePassed):  # raised inside the provider's code: not its failure
        return Failed(
            f"Hugging Face Inference did not finish {asked} within the run's time limit. Fix: "
            "try again, or a faster model or fewer steps.",
            "timeout",
        )
    if isinstance(error, MissingToken):
        return Failed(
            f"No Hugging Face token is set, so Inference cannot run {asked}. Fix: {TOKEN_HELP}.",
            "unauthorized",
        )
    if isinstance(error, GatedRepoError):
        return Failed(
            f"Model {asked} is gated: its terms must be accepted by the token's owner. Fix: open "
            f"https://huggingface.co/{where.model} logged in as that user and accept them.",
            "unauthorized",
        )
    if isinstance(error, RepositoryNotFoundError):
        return _not_found(asked, "the Hub knows no such model, or it is private", where)
    if isinstance(error, HfHubHTTPError):
        return _http(error, asked, wait_left, where)
    if isinstance(error, NoProvider):
        return _not_found(asked, str(error), where)
    answer = _provider_answer(error)
    if answer is not None or isinstance(error, KeyError | IndexError | TypeError):
        return _provider_failure(error, answer or {}, asked)
    if type(error) is TimeoutError and "No output generated" in str(error):
        return _no_output(error, asked)
    if isinstance(error, InferenceTimeoutError | TimeoutError):
        return Failed(
            f"Hugging Face Inference did not answer for {asked} in time. Fix: try again, or a "
            "faster model or fewer steps.",
            "timeout",
        )
    if isinstance(error, OfflineModeIsEnabled):
        return Failed(
            "huggingface_hub is in offline mode (HF_HUB_OFFLINE), so it makes no network calls. "
            "Fix: unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) on the server.",
            "unavailable",
        )
    if _is_transport_error(error):
        return Failed(
            f"Could not reach Hugging Face Inference for {asked}: the connection was refused or "
            f"dropped ({type(error).__name__}). Fix: check the server's network, then try again.",
            "unavailable",
        )
    if isinstance(error, UnidentifiedImageError):
        body = _body_of(error)
        said = _json_error(body)
        page = _markup_error(body)
        if page is not None:
            what = f": an XML or HTML error page{f' ({page})' if page else ''}"
        elif said:
            what = f": {said}"
        else:
            what = f" ({len(body)} bytes of something else)" if body else ""
        return Failed(
            f"Hugging Face Inference answered {asked} with something that is not an image"
            f"{what}. Fix: try again, or another provider or model.",
            "remote_error",
        )
    if isinstance(error, StopIteration) or isinstance(error.__cause__, StopIteration):
        return _not_found(asked, "no Inference Provider serves it", where)
    if isinstance(error, ValueError):
        text = str(error)
        if "api_key" in text or "log in" in text:
            return Failed(f"No token for {asked}. Fix: {TOKEN_HELP}.", "unauthorized")
        if "not supported" in text:
            return _not_found(asked, _clip(text), where)
    return Failed(
        f"Calling Hugging Face Inference for {asked} raised {type(error).__name__}: "
        f"{_clip(str(error))}. This is a bug in backend '{where.backend}'; please report it.",
        "backend_error",
    )


def _http(error: Any, asked: str, wait_left: float, where: Where) -> Retry | Failed:
    response = error.response
    status = response.status_code
    said = _detail(_json(response)) or _clip(error.server_message or "") or response.reason_phrase
    if status == 503:
        estimate = _number(_json(response).get("estimated_time"))
        if estimate is not None:
            if estimate > wait_left:
                return Failed(
                    f"The provider is loading model {asked}, which takes about "
                    f"{_seconds(estimate)}: longer than this app waits. Fix: try again in "
                    f"about {_seconds(estimate)}.",
                    "unavailable",
                    retry_after=estimate,
                )
            return Retry(
                min(estimate, LOADING_POLL),
                "loading",
                f"Loading the model, about {_seconds(estimate)}…",
                eta=estimate,
            )
    if status in (429, 503):
        after = retry_after_seconds(response.headers)
        if after is not None and after <= wait_left:
            return Retry(
                after,
                "queued",
                f"Hugging Face Inference {'rate-limited this app' if status == 429 else 'is busy'}"
                f"; trying again in {_seconds(after)}…",
                eta=after,
            )
        when = f"in about {_seconds(after)}" if after is not None else "in a minute"
        if status == 429:
            return Failed(
                f"Hugging Face Inference is rate-limiting this app ({said}). Fix: try again "
                f"{when}; a PRO account or an organisation's credits raise the limits.",
                "rate_limited",
                retry_after=after,
            )
        return Failed(
            f"Hugging Face Inference is too busy to run {asked} ({status}: {said}). Fix: try "
            f"again {when}.",
            "busy",
            retry_after=after,
        )
    if status == 401:
        return Failed(
            f"Hugging Face Inference refused the token for {asked} (401: {said}). Fix: "
            f"{TOKEN_HELP}.",
            "unauthorized",
        )
    if status in (402, 403):
        return Failed(
            f"Hugging Face Inference refused {asked} ({status}: {said}). Fix: check that the "
            "token has the 'Make calls to Inference Providers' permission, that the model's terms "
            "are accepted if it is gated, and that the account has credits left "
            "(https://huggingface.co/settings/billing).",
            "unauthorized",
        )
    if status in (404, 410):
        return _not_found(asked, f"{status}: {said}", where)
    if status in (400, 413, 422):
        return Failed(
            f"Hugging Face Inference rejected the request for {asked} ({status}: {said}). Fix: "
            "change the parameters it names (size, steps, guidance, options).",
            "invalid_request",
        )
    if status in (408, 504):
        return Failed(
            f"Hugging Face Inference timed out on {asked} ({status}: {said}). Fix: try again, "
            "or fewer steps or a smaller image.",
            "timeout",
        )
    return Failed(
        f"Hugging Face Inference failed on {asked} ({status}: {said}). Fix: try again later, or "
        "another model.",
        "remote_error",
    )


def _detail(body: dict) -> str:
    """A validation answer's ``detail`` (FastAPI's list of ``{loc, msg}``, or a string, as fal
    and replicate send), naming the parameter; "" when there is none."""
    detail = body.get("detail")
    if isinstance(detail, str):
        return _clip(detail)
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p not in ("body", "input")]
                parts.append(f"{'.'.join(loc) or '?'}: {item.get('msg', '')}".strip())
            else:
                parts.append(str(item))
        return _clip("; ".join(parts))
    return ""


_PROVIDER_CODE = "huggingface_hub.inference._providers."


def _provider_answer(error: BaseException) -> dict | None:
    """The provider's parsed answer when ``error`` was raised by huggingface_hub's provider
    code reading it (an answer without the image it expects, a failed task or poll): the
    ``response_dict``/``result`` in that frame, or ``{}``; None for any other error."""
    found = None
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_globals.get("__name__", "").startswith(_PROVIDER_CODE) and (
            frame.f_code.co_name in ("get_response", "_poll_for_result", "_extract_image")
        ):
            local = frame.f_locals
            answer = local.get("task_result") or local.get("result") or local.get("response_dict")
            found = answer if isinstance(answer, dict) else {}
        trace = trace.tb_next
    if found is None or _is_http_error(error):
        return None
    return found


def _provider_failure(error: BaseException, answer: dict, asked: str) -> Failed:
    """A provider that ran the request but sent no image: its failure, not this backend's."""
    said = _clip(f"{type(error).__name__}: {error}")
    if "nsfw" in said.lower():
        return Failed(
            f"The provider refused {asked}: its safety filter flagged the prompt ({said}). Fix: "
            "rephrase the prompt, or try another seed or provider.",
            "content_filtered",
        )
    return Failed(
        f"The provider failed on {asked} and sent no image ({said}). Fix: try again or another "
        "provider.",
        "remote_error",
    )


def _no_output(error: BaseException, asked: str) -> Failed:
    """replicate's answer without an output: its prediction failed, or did not finish within
    the 60 s it waits (``Prefer: wait``). huggingface_hub raises a bare ``TimeoutError`` for
    both, and the answer is not kept (the error crosses a thread as a new exception)."""
    return Failed(
        f"The provider sent no image for {asked}: its prediction failed or did not finish within "
        f"its own wait ({_clip(str(error))}). Fix: try again or another provider.",
        "remote_error",
    )


def _is_http_error(error: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(error, HfHubHTTPError) or _is_transport_error(error)


def _markup_error(body: bytes | None) -> str | None:
    """For an XML or HTML body (a storage bucket's error page): its ``<Code>`` or
    ``<title>``, or ""; None for anything else."""
    if not body or body.lstrip()[:1] != b"<":
        return None
    text = body[:4000].decode("utf-8", "replace")
    found = re.search(r"<(Code|title)>([^<]{1,80})</", text)
    return found.group(2).strip() if found else ""


def _not_found(asked: str, detail: str, where: Where) -> Failed:
    return Failed(
        f"Model {asked} is not available from Hugging Face Inference ({detail}). Fix: choose "
        f"another model (`python -m gradio_diffusion_preview plugins` lists what backend "
        f"'{where.backend}' offers; https://huggingface.co/models?"
        "inference_provider=all lists every served one).",
        "model_not_found",
    )


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date) or the IETF
    ``RateLimit`` header (when it says nothing is left: ``r=0;t=<seconds>``)."""
    value = headers.get("retry-after")
    if value:
        seconds = _number(value)
        if seconds is None:
            try:
                moment = email.utils.parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                moment = None
            seconds = None if moment is None else moment - (time.time() if now is None else now)
        if seconds is not None:
            return max(0.0, seconds)
    from huggingface_hub.utils import parse_ratelimit_headers

    info = parse_ratelimit_headers(headers)
    if info is not None and info.remaining == 0:
        return float(info.reset_in_seconds)
    return None


def _is_transport_error(error: BaseException) -> bool:
    import httpx2

    return isinstance(error, httpx2.TransportError | ConnectionError)


def _body_of(error: BaseException) -> bytes | None:
    """The bytes PIL could not open. huggingface_hub hands ``text_to_image``'s response body to
    ``_bytes_to_image(content)`` and keeps no other reference, so it is read from that frame
    of the traceback; None when the library changed and it is not there."""
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        content = frame.f_locals.get("content")
        if frame.f_code.co_name == "_bytes_to_image" and isinstance(content, bytes | bytearray):
            return bytes(content)
        trace = trace.tb_next
    return None


def _json_error(body: bytes | None) -> str:
    """The ``error`` (or whole text) of a small JSON body, clipped; "" when there is none."""
    if not body or len(body) > 100_000:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict) and data.get("error"):
        data = data["error"]
    return _clip(data if isinstance(data, str) else json.dumps(data))


def _json(response: Any) -> dict:
    try:
        data = response.json()
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 90:
        return f"{max(1, round(value))} s"
    if value < 3570:
        return f"{round(value / 60)} min"
    return f"{round(value / 3600, 1):g} h"


_ADDRESS = re.compile(r"(?:https?|wss?)://[^\s'\"<>)]+")


def _clip(text: str) -> str:
    """Server or error text for a message: one line, short, and with no address (a provider's
    route or a signed delivery URL must not reach visitors)."""
    text = _ADDRESS.sub("(address withheld)", " ".join(text.split()))
    return text if len(text) <= MAX_SERVER_TEXT else text[: MAX_SERVER_TEXT - 1] + "…"
