"""ComfyUI's HTTP API (server.py), through httpx, with every failure turned into a
``RemoteFailure`` (the remote backends' shared exception) that carries a failure reason and a
message naming the fix.

Messages name the backend, never the server's address: they reach the visitors of a public app.
(The address is in the server's configuration, which ``python -m gradio_diffusion_preview
plugins`` shows to its owner.)
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import PIL.Image

from ..remote_failure import RemoteFailure
from .workflow import MODEL_INPUTS

if TYPE_CHECKING:
    from ...endpoints import Endpoint

READ_TIMEOUT = 30.0
"""The longest one HTTP call may wait for its answer (less when the run's deadline is nearer)."""
ORIGIN_HINT = (
    "ComfyUI answers 403 when a request's Origin header names another host than its Host header "
    "(its check against cross-site requests, for loopback addresses), and a proxy in front of it "
    "answers 403 when it refuses the credentials"
)


@dataclass(frozen=True)
class QueuePlace:
    """Where a prompt is in ComfyUI's queue."""

    running: bool
    """It is the one running now."""
    pending_ahead: int | None
    """How many pending prompts run before it; None when it is not pending."""
    pending: int
    others_running: int

    @property
    def known(self) -> bool:
        return self.running or self.pending_ahead is not None


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    """The credentials to send (for a proxy in front of ComfyUI, which has no auth of its own)."""
    token = endpoint.secret_token()
    if token:
        return {"Authorization": f"Bearer {token}"}
    if endpoint.username:
        pair = f"{endpoint.username}:{endpoint.secret_password() or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


class ComfyClient:
    """The HTTP calls one backend makes. Thread-safe (one ``httpx.Client``)."""

    def __init__(self, endpoint: Endpoint, backend_id: str) -> None:
        self.backend_id = backend_id
        self.where = f"the ComfyUI server of backend '{backend_id}'"
        self._http = httpx.Client(
            base_url=endpoint.url,
            headers=auth_headers(endpoint),
            timeout=httpx.Timeout(READ_TIMEOUT, connect=endpoint.connect_timeout),
        )

    def close(self) -> None:
        self._http.close()

    # -- calls -------------------------------------------------------------------------------

    def submit(
        self,
        graph: dict[str, Any],
        *,
        client_id: str,
        prompt_id: str,
        extra_data: dict[str, Any],
        model_inputs: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> None:
        """Queue a prompt under our own ``prompt_id``; raises ``RemoteFailure`` (a refused graph is
        ``invalid_request``, or ``model_not_found`` when a model file is missing)."""
        body = {
            "prompt": graph,
            "client_id": client_id,
            "prompt_id": prompt_id,
            "extra_data": extra_data,
        }
        response = self._call("POST", "/prompt", json=body, timeout=timeout)
        if response.status_code == 400:
            raise refused_prompt(self.backend_id, _json(response), set(model_inputs))
        self._check(response, "/prompt")
        data = _json(response)
        if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
            raise RemoteFailure(
                f"{sentence(self.where)} answered the prompt with {_sample(response)}, not a "
                "prompt id. Fix: check that the backend's address is a ComfyUI server.",
                "remote_error",
            )

    def upload_image(self, png: bytes, name: str, timeout: float | None = None) -> str:
        """Put a PNG in the server's ``input`` folder (``POST /upload/image``, overwriting a file
        of that name); returns the name a ``LoadImage`` node takes (``subfolder/name``)."""
        response = self._call(
            "POST",
            "/upload/image",
            files={"image": (name, png, "image/png")},
            data={"type": "input", "overwrite": "true"},
            timeout=timeout,
        )
        self._check(response, "/upload/image")
        data = _json(response)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise RemoteFailure(
                f"{sentence(self.where)} answered the upload with {_sample(response)}, not the "
                "file's name. Fix: check that the backend's address is a ComfyUI server.",
                "remote_error",
            )
        subfolder = data.get("subfolder")
        return (
            f"{subfolder}/{data['name']}"
            if isinstance(subfolder, str) and subfolder
            else data["name"]
        )

    def queue_place(self, prompt_id: str, timeout: float | None = None) -> QueuePlace:
        """Where ``prompt_id`` is in the queue (``GET /queue``)."""
        data = self._json("GET", "/queue", timeout)
        running = _items(data, "queue_running")
        pending = _items(data, "queue_pending")
        ours = [item for item in pending if item[1] == prompt_id]
        ahead = None
        if ours:
            ahead = sum(1 for item in pending if _number(item) < _number(ours[0]))
        return QueuePlace(
            running=any(item[1] == prompt_id for item in running),
            pending_ahead=ahead,
            pending=len(pending),
            others_running=sum(1 for item in running if item[1] != prompt_id),
        )

    def interrupt(self, prompt_id: str, timeout: float | None = None) -> None:
        """Interrupt ``prompt_id`` if it is the one running (servers that predate the
        ``prompt_id`` field interrupt whatever runs: call this only when ours does)."""
        self._check(
            self._call("POST", "/interrupt", json={"prompt_id": prompt_id}, timeout=timeout),
            "/interrupt",
        )

    def delete(self, prompt_id: str, timeout: float | None = None) -> None:
        """Take ``prompt_id`` out of the pending queue (nothing happens if it is not pending)."""
        self._check(
            self._call("POST", "/queue", json={"delete": [prompt_id]}, timeout=timeout), "/queue"
        )

    def history(self, prompt_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """The prompt's history entry (outputs and status), or None while it has none."""
        data = self._json("GET", f"/history/{prompt_id}", timeout)
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    def image(self, ref: dict[str, Any], timeout: float | None = None) -> PIL.Image.Image:
        """A final image, by its ``{filename, subfolder, type}`` from an ``executed`` message."""
        params = {
            "filename": ref["filename"],
            "subfolder": ref.get("subfolder") or "",
            "type": ref.get("type") or "output",
        }
        response = self._call("GET", "/view", params=params, timeout=timeout)
        self._check(response, "/view")
        try:
            with PIL.Image.open(io.BytesIO(response.content)) as image:
                image.load()
                return image.convert("RGB")
        except Exception:  # Pillow raises many kinds for bytes that are not an image
            raise RemoteFailure(
                f"{sentence(self.where)} sent {len(response.content)} bytes that are not an image "
                f"for the final image '{params['filename']}'. Fix: check the ComfyUI server "
                "(its output folder and logs).",
                "remote_error",
            ) from None

    def combo(self, class_type: str, input_name: str, timeout: float | None = None) -> list[str]:
        """The choices ComfyUI offers for a node's list input (checkpoints, samplers)."""
        data = self._json("GET", f"/object_info/{class_type}", timeout)
        node = data.get(class_type) if isinstance(data, dict) else None
        if not isinstance(node, dict):
            raise RemoteFailure(
                f"{sentence(self.where)} has no node '{class_type}'. Fix: check the server's "
                "ComfyUI version and custom nodes.",
                "remote_error",
            )
        inputs = node.get("input") or {}
        for group in ("required", "optional"):
            spec = (inputs.get(group) or {}).get(input_name)
            choices = _choices(spec)
            if choices is not None:
                return choices
        raise RemoteFailure(
            f"{sentence(self.where)} describes no list input '{input_name}' for '{class_type}'.",
            "remote_error",
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, timeout: float | None) -> Any:
        response = self._call(method, path, timeout=timeout)
        self._check(response, path)
        return _json(response)

    def _call(self, method: str, path: str, *, timeout: float | None, **kw) -> httpx.Response:
        limit = READ_TIMEOUT if timeout is None else max(0.01, min(timeout, READ_TIMEOUT))
        try:
            return self._http.request(method, path, timeout=self._timeout(limit), **kw)
        except httpx.ConnectTimeout:
            raise RemoteFailure(
                f"Cannot reach {self.where}: the connection timed out. Fix: check that ComfyUI "
                "is running at the configured address and reachable from this machine.",
                "unavailable",
            ) from None
        except httpx.ConnectError as error:
            raise RemoteFailure(
                f"Cannot reach {self.where} ({_reason(error)}). Fix: check that ComfyUI is "
                "running at the configured address (start it with --listen to reach it from "
                "another machine).",
                "unavailable",
            ) from None
        except httpx.TimeoutException:
            raise RemoteFailure(
                f"{sentence(self.where)} did not answer {method} {path} within {limit:.0f} s.",
                "timeout",
            ) from None
        except httpx.HTTPError as error:
            raise RemoteFailure(
                f"The connection to {self.where} failed during {method} {path} "
                f"({type(error).__name__}: {_reason(error)}). Fix: check the server and the "
                "network, then try again.",
                "unavailable",
            ) from None

    def _timeout(self, limit: float) -> httpx.Timeout:
        connect = self._http.timeout.connect
        return httpx.Timeout(limit, connect=min(connect, limit) if connect else limit)

    def _check(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise refused(self.where, path, status)
        if status == 404:
            raise RemoteFailure(
                f"{sentence(self.where)} has no {path} (HTTP 404). Fix: check that the backend's "
                "address is a ComfyUI server (and its path, behind a proxy).",
                "remote_error",
            )
        if status == 429:
            raise RemoteFailure(
                f"{sentence(self.where)} is rate limiting (HTTP 429).", "rate_limited"
            )
        if status == 503:
            raise RemoteFailure(
                f"{sentence(self.where)} is unavailable (HTTP 503). Fix: try again later.",
                "unavailable",
            )
        raise RemoteFailure(
            f"{sentence(self.where)} failed {path} with HTTP {status}: {_sample(response)}.",
            "remote_error",
        )


def refused(where: str, what: str, status: int) -> RemoteFailure:
    """The ``RemoteFailure`` for an HTTP 401 or 403 answer to ``what``."""
    hint = ORIGIN_HINT if status == 403 else "a proxy in front of ComfyUI wants credentials"
    return RemoteFailure(
        f"{sentence(where)} refused {what} (HTTP {status}): {hint}. Fix: set the endpoint's "
        "token or user and password for the proxy, or start ComfyUI with --enable-cors-header "
        "if its origin check is what refuses.",
        "unauthorized",
    )


def refused_prompt(backend_id: str, body: Any, model_inputs: set[tuple[str, str]]) -> RemoteFailure:
    """The ``RemoteFailure`` for a graph that ComfyUI's validation refused (HTTP 400)."""
    body = body if isinstance(body, dict) else {}
    error = body.get("error")
    node_errors = body.get("node_errors")
    problems: list[str] = []
    missing_model = False
    if isinstance(node_errors, dict):
        for node_id, entry in node_errors.items():
            if not isinstance(entry, dict):
                continue
            class_type = entry.get("class_type", "?")
            for item in entry.get("errors") or []:
                if not isinstance(item, dict):
                    continue
                problems.append(f"{class_type} {node_id}: {_error_text(item)}")
                name = (item.get("extra_info") or {}).get("input_name")
                if item.get("type") == "value_not_in_list" and (
                    (node_id, name) in model_inputs or name in MODEL_INPUTS
                ):
                    missing_model = True
    if not problems:
        problems.append(_error_text(error) if isinstance(error, dict) else str(error or "?"))
    text = "; ".join(problems)
    if missing_model:
        return RemoteFailure(
            f"The ComfyUI server of backend '{backend_id}' does not have the model: {text}. Fix: "
            "choose one of the checkpoints it lists (`python -m gradio_diffusion_preview "
            "plugins`), or put the file in ComfyUI's models folder.",
            "model_not_found",
        )
    return RemoteFailure(
        f"The ComfyUI server of backend '{backend_id}' refused the workflow: {text}. Fix: check "
        "the request's values (sampler, scheduler, size) and the backend's workflow.",
        "invalid_request",
    )


def _error_text(error: dict[str, Any]) -> str:
    message, details = error.get("message") or "", error.get("details") or ""
    return f"{message}: {details}" if message and details else str(message or details or "?")


def _choices(spec: Any) -> list[str] | None:
    """A list input's choices: ``[[choice, ...], {...}]``, or ``["COMBO", {"options": [...]}]``
    in the newer node schema."""
    if not isinstance(spec, list) or not spec:
        return None
    first = spec[0]
    if isinstance(first, list):
        return [str(choice) for choice in first]
    if first == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        if isinstance(options, list):
            return [str(choice) for choice in options]
    return None


def _items(data: Any, key: str) -> list[list[Any]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RemoteFailure(f"ComfyUI's /queue has no '{key}' list.", "remote_error")
    return [item for item in items if isinstance(item, list) and len(item) >= 2]


def _number(item: list[Any]) -> float:
    try:
        return float(item[0])
    except (TypeError, ValueError):
        return 0.0


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RemoteFailure(
            f"ComfyUI answered {response.request.url.path} with {_sample(response)}, not JSON. "
            "Fix: check that the backend's address is a ComfyUI server.",
            "remote_error",
        ) from None


def _sample(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return repr(text[:200] + ("…" if len(text) > 200 else "")) if text else "an empty body"


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def sentence(text: str) -> str:
    """``text`` with a capital first letter, to begin a sentence."""
    return text[:1].upper() + text[1:]
