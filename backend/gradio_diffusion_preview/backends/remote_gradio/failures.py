"""What went wrong with a remote Gradio app, for people (a message naming the fix) and for code
(a failure reason): ``classify`` turns the exceptions gradio_client and httpx raise into the
remote backends' shared ``RemoteFailure``, and ``scrubbed`` keeps the endpoint's address and
secrets out of its message.

gradio_client reports trouble in odd types: a server killed mid-run surfaces as
``concurrent.futures.CancelledError``, a protocol it cannot speak as ``ValueError``, a refused
login as ``AuthenticationError``. ``classify`` turns each into one clear ``RemoteFailure``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import re
from typing import Literal

from ...endpoints import Endpoint, public_url
from ...events import FailureReason
from ..remote_failure import RemoteFailure

FIX_REACH = (
    "Fix: check the endpoint's address and that the app is running and reachable from this "
    "server, then try again."
)


def is_space(url: str) -> bool:
    """Whether ``url`` is a Space id (``owner/name``) rather than an address."""
    return "://" not in url


def where_of(endpoint: Endpoint) -> str:
    """How messages name the endpoint's app, after "The Gradio app": by its backend id, and by
    its Space id for a Space. Never by its address: messages reach a public app's visitors,
    and an address may be a private machine's (``plugins`` shows it to the server's owner)."""
    space = f" (Space {endpoint.url})" if is_space(endpoint.url) else ""
    return f"of backend '{endpoint.id}'{space}"


def scrubbed(failure: RemoteFailure, endpoint: Endpoint) -> RemoteFailure:
    """The failure without the endpoint's address (which may hold a password) or its secrets,
    should an exception's text have carried them in."""
    message = failure.message
    for address in (endpoint.url, public_url(endpoint.url)):
        if address and not is_space(address):  # any case: httpx writes the host in lower case
            message = re.sub(re.escape(address), "the endpoint's address", message, flags=re.I)
    for secret in (endpoint.secret_token(), endpoint.secret_password()):
        if secret:
            message = message.replace(secret, "**********")
    return RemoteFailure(message, failure.reason, failure.retry_after, status=failure.status)


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception, or just the type when it has no message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def said(error: BaseException) -> str:
    """What a transport error says, for people: its words, not its class (``describe`` keeps
    the class where it is the only clue)."""
    return str(error).strip() or "no answer"


def unquoted(message: str) -> str:
    """A ``gr.Error``'s text as the app wrote it: Gradio 4 sends ``repr`` of it (its
    ``Error.__str__``), quotes and escapes included; Gradio 5 and 6 send the text itself."""
    text = message.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            value = ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return message
        if isinstance(value, str):
            return value
    return message


def classify(
    error: BaseException, where: str, *, stage: Literal["connect", "run"] = "run"
) -> RemoteFailure:
    """The ``RemoteFailure`` for an exception met while talking to the app named ``where``
    (``where_of``), while connecting or during a submitted run."""
    import httpx
    from gradio_client.exceptions import AppError, AuthenticationError, ValidationError
    from gradio_client.utils import QueueError, TooManyRequestsError

    if isinstance(error, RemoteFailure):
        return error
    if isinstance(error, AppError):
        message = unquoted(error.message or str(error))
        return RemoteFailure(f"The Gradio app {where} failed: {message}", "remote_error")
    if isinstance(error, AuthenticationError) or str(error).startswith("Could not login"):
        return RemoteFailure(
            f"The Gradio app {where} refused the login ({error}). Fix: set the endpoint's "
            "username and password (DIFFUSION_PREVIEW_GRADIO_USER and "
            "DIFFUSION_PREVIEW_GRADIO_PASSWORD, or username/password_env in the endpoints file).",
            "unauthorized",
        )
    if isinstance(error, TooManyRequestsError):
        return RemoteFailure(
            f"The Gradio app {where} is refusing requests for now (HTTP 429). Fix: try again "
            "in a minute.",
            "rate_limited",
            60.0,
        )
    if isinstance(error, QueueError):
        return RemoteFailure(
            f"The Gradio app {where} has a full queue. Fix: try again in a little while.",
            "busy",
            30.0,
        )
    if isinstance(error, ValidationError):
        return RemoteFailure(
            f"The Gradio app {where} rejected the request's values: {error}. Fix: keep "
            "within the app's limits (set options.capabilities on the endpoint to match them).",
            "invalid_request",
        )
    if isinstance(error, concurrent.futures.CancelledError) and stage == "run":
        return RemoteFailure(
            f"The connection to the Gradio app {where} dropped during the run (the app "
            f"stopped or the network failed). {FIX_REACH}",
            "unavailable",
        )
    if isinstance(error, httpx.TimeoutException):
        return RemoteFailure(
            f"The Gradio app {where} did not answer in time ({describe(error)}). {FIX_REACH}",
            "timeout",
        )
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        reason: FailureReason = "unauthorized" if status in (401, 403) else "remote_error"
        return RemoteFailure(f"The Gradio app {where} answered HTTP {status}. {FIX_REACH}", reason)
    if isinstance(error, httpx.TransportError | OSError):
        return RemoteFailure(
            f"The Gradio app {where} cannot be reached ({said(error)}). {FIX_REACH}",
            "unavailable",
        )
    if isinstance(error, ValueError) and "Unknown protocol" in str(error):
        protocol = str(error).rsplit(":", 1)[-1].strip()
        return RemoteFailure(protocol_message(where, protocol), "unavailable")
    if type(error).__module__.startswith("huggingface_hub"):
        return RemoteFailure(
            f"The app {where} cannot be used ({describe(error)}). Fix: check the Space id, "
            "that it is running, and for a private Space the endpoint's token.",
            "unavailable",
        )
    if stage == "connect":
        return RemoteFailure(
            f"The address {where} does not answer like a Gradio app ({describe(error)}). Fix: "
            "point the endpoint at a Gradio 4 to 6 app (its root address) or a Space id.",
            "unavailable",
        )
    return RemoteFailure(
        f"The Gradio app {where} failed in an unexpected way ({describe(error)}).",
        "remote_error",
    )


def protocol_message(where: str, protocol: str, remote_version: str | None = None) -> str:
    """The message for a remote that speaks a protocol the installed gradio_client cannot."""
    from gradio_client import __version__ as client_version

    runs = f"runs Gradio {remote_version} and " if remote_version else ""
    return (
        f"The Gradio app {where} {runs}speaks the protocol '{protocol}', which the installed "
        f"gradio_client {client_version} cannot speak (it speaks sse_v1 to sse_v3, Gradio 4 to "
        f"6). Fix: install the gradio_client release that matches the remote's Gradio version "
        f"on this server (pip install -U gradio_client), or run the remote app on Gradio 6."
    )
