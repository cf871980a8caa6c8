"""The connection to a remote Gradio app: ``gradio_client.Client``s made the safe way, lent to
one run at a time, and the endpoint's ``RemoteApi``.

Each client is made with:

- ``token=False`` unless a token is configured for this endpoint: without it gradio_client sends
  the machine's Hugging Face token (``HF_TOKEN``, the token file) to any address;
- ``download_files=False``: gradio_client would otherwise download every file of every
  intermediate value, on its reader thread, into a folder it never cleans; only the final images
  are fetched, into memory (``Session.fetch_file``);
- a read timeout above Gradio's 15-second heartbeat, and the endpoint's connect timeout;
- no telemetry: ``analytics_enabled=False`` alone does not stop it (the environment can turn it
  back on), so the client's telemetry thread is replaced by one that does nothing;
- the process's one TLS context (``tls_context``) as its ``ssl_verify``: gradio_client passes it
  to every request it makes, each of which opens an httpx client, and an httpx client given
  ``True`` builds a context of its own (about 25 ms of CPU loading the CA bundle), several for
  every run, even over plain HTTP.

Making a client costs two or three blocking requests (``/config``, ``/gradio_api/info``, a
login), so clients are made on first use and kept (``Session.lease``/``release``): one run at a
time keeps the load balancer's session affinity of its client for its whole life. A client is
never shared by two runs at once, because Gradio's ``/cancel`` stops *every* running task of the
client's session for that endpoint (it cancels by session hash and function, not by event): a
visitor's Stop would otherwise end other visitors' runs. With one run at a time, one client is
made and reused; concurrent runs make more, and up to ``MAX_IDLE_CLIENTS`` are kept.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
from typing import Any

import httpx
from gradio_client import Client
from gradio_client.utils import encode_file_path

from ...endpoints import Endpoint
from ..capped_read import read_capped
from ..remote_failure import RemoteFailure
from .api import RemoteApi, detect
from .failures import classify, protocol_message, scrubbed, where_of
from .settings import GradioSettings

SUPPORTED_PROTOCOLS = ("sse_v1", "sse_v2", "sse_v2.1", "sse_v3")
"""The event-stream protocols gradio_client 2.x speaks (Gradio 4 to 6)."""
MAX_IMAGE_BYTES = 64 * 2**20
"""The largest final image fetched from a remote app."""
MAX_IDLE_CLIENTS = 4
"""Clients kept for reuse per endpoint; more concurrent runs make clients that are closed after."""


class QuietClient(Client):
    """A gradio_client ``Client`` that never reports the address it connects to as telemetry."""

    def _telemetry_thread(self) -> None:
        return None


class Session:
    """An endpoint's API and its clients, shared by the endpoint's runs."""

    def __init__(
        self, endpoint: Endpoint, settings: GradioSettings, client: Client, api: RemoteApi
    ) -> None:
        self.endpoint, self.settings, self.api = endpoint, settings, api
        self.where = where_of(endpoint)
        self._idle: list[Client] = [client]
        self._lock = threading.Lock()
        self._closed = False

    def lease(self) -> Client:
        """A client for one run, alone; give it back with ``release``. Raises
        ``RemoteFailure`` when a new one cannot connect."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return open_client(self.endpoint, self.settings)

    def release(self, client: Client, reusable: bool = True) -> None:
        """Take a leased client back: kept for the next run when it is ``reusable`` (its run
        is over at the remote, nothing more will be sent for it), closed otherwise."""
        with self._lock:
            if reusable and not self._closed and len(self._idle) < MAX_IDLE_CLIENTS:
                self._idle.append(client)
                return
        _close(client)

    def close(self) -> None:
        """Close the idle clients; leased ones are closed as they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for client in idle:
            _close(client)

    def fetch_file(self, client: Client, file: dict[str, Any]) -> bytes:
        """The bytes of a file the app returned (a FileData dict), fetched from the app itself.

        The address is made from the file's ``path`` on the app's own ``/file=`` route, as
        gradio_client does, never taken from the value's ``url`` (which the remote chooses);
        redirects are not followed, so the token header goes nowhere else.
        """
        path = file.get("path")
        if not isinstance(path, str) or not path:
            raise RemoteFailure(
                f"The Gradio app {self.where} returned a file with no path ({_short(file)}).",
                "remote_error",
            )
        url = client.src_prefixed + "file=" + encode_file_path(path)
        with httpx.stream(
            "GET",
            url,
            headers=client.headers,
            cookies=client.cookies,
            verify=client.ssl_verify,
            follow_redirects=False,
            **client.httpx_kwargs,
        ) as response:
            response.raise_for_status()
            return read_capped(
                response,
                MAX_IMAGE_BYTES,
                f"The Gradio app {self.where} returned an image over "
                f"{MAX_IMAGE_BYTES // 2**20} MiB.",
            )


def connect(endpoint: Endpoint, settings: GradioSettings) -> Session:
    """Connect to the endpoint's app and read its API; raises ``RemoteFailure``."""
    client = open_client(endpoint, settings)
    try:
        info = client.view_api(print_info=False, return_format="dict")
        api = detect(info, settings, where_of(endpoint), endpoint.models, client.config)
    except Exception as error:
        _close(client)
        raise scrubbed(classify(error, where_of(endpoint), stage="connect"), endpoint) from None
    return Session(endpoint, settings, client, api)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of every remote Gradio client of this process: the one httpx would build
    for each request (its CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once."""
    return httpx.create_ssl_context()


def open_client(endpoint: Endpoint, settings: GradioSettings) -> Client:
    """A new client of the endpoint's app (see the module docstring); raises
    ``RemoteFailure`` when it cannot connect or speaks a protocol the client cannot."""
    where = where_of(endpoint)
    token = endpoint.secret_token()
    password = endpoint.secret_password()
    auth = (endpoint.username, password or "") if endpoint.username else None
    timeout = httpx.Timeout(endpoint.connect_timeout, read=settings.read_timeout)
    try:
        client = QuietClient(
            endpoint.url,
            token=token or False,  # False: no token at all, not the machine's own
            verbose=False,
            auth=auth,
            httpx_kwargs={"timeout": timeout},
            ssl_verify=tls_context(),  # type: ignore[arg-type]  # passed on as httpx's verify
            download_files=False,
            analytics_enabled=False,
        )
    except Exception as error:
        raise scrubbed(classify(error, where, stage="connect"), endpoint) from None
    protocol = str(client.protocol)
    if protocol not in SUPPORTED_PROTOCOLS:
        _close(client)
        version = str(client.config.get("version") or "") or None
        raise RemoteFailure(protocol_message(where, protocol, version), "unavailable")
    return client


def _close(client: Client) -> None:
    """Stop the client's heartbeat thread (its worker threads end with it)."""
    with contextlib.suppress(Exception):
        client.close()


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
