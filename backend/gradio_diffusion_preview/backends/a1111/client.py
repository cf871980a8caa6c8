"""A1111Client: the HTTP calls this backend makes to one AUTOMATIC1111 / Forge / SD.Next server,
over one thread-safe httpx connection pool, with every failure turned into a ``RemoteFailure``
that carries the failure reason and a message naming the endpoint and the fix.

httpx is the ``[a1111]`` extra and is imported only when the first call is made.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from ...endpoints import public_url
from ...events import FailureReason
from ..capped_read import read_capped
from ..remote_failure import RemoteFailure
from .protocol import ProgressReport, ProtocolError, error_text, parse_progress

if TYPE_CHECKING:
    import httpx

    from ...endpoints import Endpoint

INSTALL_HINT = "pip install 'gradio-diffusion-preview[a1111]'"
MAX_ANSWER_BYTES = 256 * 2**20
"""The largest answer read (a batch of eight 2048 px PNGs is about 130 MiB as base64)."""
SMALL_CALL_SECONDS = 30.0
"""Read timeout of the short calls (listings, progress, interrupt), or the endpoint's
``timeout`` when that is shorter."""


class A1111Client:
    """The calls, for one endpoint. Safe to share between threads."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.where = f"'{endpoint.id}' at {public_url(endpoint.url)}"
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    # -- the calls -------------------------------------------------------------------------

    def sd_models(self) -> list[dict[str, Any]]:
        return self._list("/sdapi/v1/sd-models", "checkpoints")

    def samplers(self) -> list[dict[str, Any]]:
        return self._list("/sdapi/v1/samplers", "samplers")

    def schedulers(self) -> list[dict[str, Any]] | None:
        """The schedulers, or None on servers without ``/sdapi/v1/schedulers`` (before 1.9)."""
        try:
            return self._list("/sdapi/v1/schedulers", "schedulers")
        except RemoteFailure as failure:
            if failure.status == 404:
                return None
            raise

    def loaded_checkpoint(self) -> str | None:
        """The title of the checkpoint the server has loaded (``opts.sd_model_checkpoint``)."""
        value = self.saved_options().get("sd_model_checkpoint")
        return value if isinstance(value, str) else None

    def saved_options(self) -> dict[str, Any]:
        """The server's saved settings: ``GET /sdapi/v1/options`` answers ``opts.data`` (what
        its ``config.json`` holds), not the defaults of the settings it never saved."""
        options = self._json("GET", "/sdapi/v1/options")
        return options if isinstance(options, dict) else {}

    def cmd_flags(self) -> dict[str, Any]:
        """The server's command-line flags (``GET /sdapi/v1/cmd-flags``, ``vars(cmd_opts)``)."""
        flags = self._json("GET", "/sdapi/v1/cmd-flags")
        return flags if isinstance(flags, dict) else {}

    def has_progress_api(self) -> bool | None:
        """Whether the server answers ``/internal/progress``: False for ``--nowebui`` (the
        route is registered with the web UI only), None when the server could not be asked."""
        try:
            self.progress("task(gradio-diffusion-preview-probe)", -1, False)
        except RemoteFailure as failure:
            return False if failure.status == 404 else None
        return True

    def progress(
        self, task_id: str, last_preview: int = -1, live_preview: bool = True
    ) -> ProgressReport:
        """Our task's progress (``/internal/progress``, which ``--api-auth`` does not cover)."""
        body = {"id_task": task_id, "id_live_preview": last_preview, "live_preview": live_preview}
        data = self._json("POST", "/internal/progress", json=body)
        try:
            return parse_progress(data)
        except ProtocolError as error:
            raise RemoteFailure(
                f"{self.where} answered progress with {error}", "remote_error"
            ) from None

    def interrupt(self) -> None:
        """Stop whatever job the server is running now (it has no per-task stop)."""
        self._json("POST", "/sdapi/v1/interrupt")

    def txt2img(self, payload: dict[str, Any], read_timeout: float) -> Any:
        """The blocking generation call; returns the decoded JSON answer."""
        return self._json("POST", "/sdapi/v1/txt2img", json=payload, read_timeout=read_timeout)

    def img2img(self, payload: dict[str, Any], read_timeout: float) -> Any:
        """The blocking image-to-image (and inpainting) call; answers as ``txt2img``."""
        return self._json("POST", "/sdapi/v1/img2img", json=payload, read_timeout=read_timeout)

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                try:
                    import httpx
                except ImportError as error:
                    raise RemoteFailure(
                        f"The a1111 backend needs httpx ({error}). Install it with: {INSTALL_HINT}",
                        "backend_error",
                    ) from None
                endpoint = self.endpoint
                auth = None
                headers = {"Accept": "application/json"}
                password = endpoint.secret_password()
                if endpoint.username:
                    auth = httpx.BasicAuth(endpoint.username, password or "")
                elif endpoint.secret_token():  # a reverse proxy in front of the server
                    headers["Authorization"] = f"Bearer {endpoint.secret_token()}"
                self._http = httpx.Client(
                    base_url=endpoint.url,
                    auth=auth,
                    headers=headers,
                    timeout=httpx.Timeout(
                        min(SMALL_CALL_SECONDS, endpoint.timeout), connect=endpoint.connect_timeout
                    ),
                    follow_redirects=False,
                    trust_env=False,
                )
            return self._http

    def _list(self, path: str, what: str) -> list[dict[str, Any]]:
        data = self._json("GET", path)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise RemoteFailure(
                f"{self.where} answered {path} with something that is not a list of "
                f"{what}: {_clip(data)}",
                "remote_error",
            )
        return data

    def _json(
        self, method: str, path: str, *, json: Any = None, read_timeout: float | None = None
    ) -> Any:
        import httpx

        http = self._client()
        timeout = None
        if read_timeout is not None:
            timeout = httpx.Timeout(max(read_timeout, 0.1), connect=self.endpoint.connect_timeout)
        try:
            request = http.build_request(
                method, path, json=json, **({"timeout": timeout} if timeout else {})
            )
            response = http.send(request, stream=True)
            try:
                body = read_capped(
                    response,
                    MAX_ANSWER_BYTES,
                    f"{self.where} answered {path} with more than "
                    f"{MAX_ANSWER_BYTES // 2**20} MiB; that is not a txt2img answer.",
                )
            finally:
                response.close()
        except httpx.HTTPError as error:
            raise self._transport_failure(error, path) from None
        if response.status_code >= 400:
            raise self._status_failure(response.status_code, response.headers, body, path)
        try:
            return _loads(body)
        except ValueError:
            raise RemoteFailure(
                f"{self.where} answered {path} with something that is not JSON: "
                f"{_clip(body.decode('utf-8', 'replace'))}",
                "remote_error",
            ) from None

    def _transport_failure(self, error: Exception, path: str) -> RemoteFailure:
        import httpx

        name = type(error).__name__
        if isinstance(error, httpx.ConnectTimeout | httpx.ConnectError):
            return RemoteFailure(
                f"Cannot reach {self.where} ({_said(error)}). Fix: start AUTOMATIC1111, Forge "
                "or SD.Next with --api (and --listen when it runs on another machine), and "
                "check the endpoint's URL (DIFFUSION_PREVIEW_A1111_URL or the endpoints file).",
                "unavailable",
            )
        if isinstance(error, httpx.TimeoutException):
            return RemoteFailure(f"{self.where} did not answer {path} in time ({name}).", "timeout")
        return RemoteFailure(
            f"The connection to {self.where} was dropped during {path} ({name}: {error}). "
            "The server may have restarted or crashed; try again.",
            "unavailable",
        )

    def _status_failure(self, status: int, headers: Any, body: bytes, path: str) -> RemoteFailure:
        try:
            message = error_text(_loads(body))
        except ValueError:
            message = None
        said = _clip(message or body.decode("utf-8", "replace").strip() or "no message", 300)
        retry_after = _seconds(headers.get("retry-after"))
        if status in (401, 403):
            endpoint = self.endpoint
            if endpoint.username:
                fix = (
                    "check that the endpoint's username and password are one of the pairs the "
                    "server was started with (--api-auth user:password)"
                )
            else:
                fix = (
                    "the server was started with --api-auth user:password; give the endpoint "
                    "that username and password (DIFFUSION_PREVIEW_A1111_USER and "
                    "DIFFUSION_PREVIEW_A1111_PASSWORD, or username and password_env in the "
                    "endpoints file)"
                )
            failure = RemoteFailure(
                f"{self.where} refused our credentials for {path} (HTTP {status}: {said}). "
                f"Fix: {fix}.",
                "unauthorized",
            )
        elif status == 404 and path.startswith("/sdapi/"):
            failure = RemoteFailure(
                f"{self.where} has no {path} (HTTP 404). Fix: start the server with --api, and "
                "check that the endpoint's URL is the server's base address.",
                "unavailable",
            )
        elif status == 429:
            failure = RemoteFailure(
                f"{self.where} is limiting requests (HTTP 429: {said}).",
                "rate_limited",
                retry_after,
            )
        elif status in (502, 503, 504):
            failure = RemoteFailure(
                f"{self.where} is not available (HTTP {status}: {said}).",
                "unavailable",
                retry_after,
            )
        elif status in (400, 422):
            failure = RemoteFailure(
                f"{self.where} rejected the request (HTTP {status}: {said}).", "invalid_request"
            )
        else:
            failure = RemoteFailure(
                f"{self.where} failed (HTTP {status}): {said}", _reason_of(said)
            )
        failure.status = status
        return failure


def _reason_of(message: str) -> FailureReason:
    """A server error's reason from its message: running out of GPU memory, a checkpoint it
    does not have (Forge: ``model 'x' not found``), or the server's own error."""
    lowered = message.lower()
    if "out of memory" in lowered or "outofmemory" in lowered:
        return "out_of_memory"
    if "not found" in lowered and ("model" in lowered or "checkpoint" in lowered):
        return "model_not_found"
    return "remote_error"


def _loads(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _clip(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[: limit + 1]
    return text if len(text) <= limit else text[:limit] + "…"


def _said(error: Exception) -> str:
    """What a connection error says, for people: its words, not its class (the log has both)."""
    return str(error).strip() or "no answer"
