"""Run ownership: a run started inside a Gradio event belongs to that browser session.

``stream`` records the Gradio session (``gr.Request.session_hash``) of the event that started a
run. The component's Stop and "Use this preview" handlers pass the caller's session, so they act
only on the caller's own runs; for anyone else's run id (or one that does not exist) they do
nothing and say nothing, so they cannot be used to stop other people's runs or to probe which
runs exist. The app's own code keeps ``cancel_run(run_id)`` without a session, for any run.
"""

from __future__ import annotations

import sys
from typing import Any


def current_session() -> str | None:
    """The session hash of the Gradio event running this code, or None outside one (or
    without gradio installed)."""
    return session_of(_gradio_request())


def current_event() -> str | None:
    """The id of the Gradio event running this code (the ``event_id`` its client holds, and
    posts to Gradio's cancel route), or None outside one."""
    event = _gradio_local("event_id")
    return event if isinstance(event, str) and event else None


def _gradio_request() -> Any:
    """The ``gr.Request`` of the Gradio event running this code, or None."""
    return _gradio_local("request")


def _gradio_local(name: str) -> Any:
    """The value of Gradio's per-event context variable ``name`` here, or None. Gradio is not
    imported for it: where nothing has imported Gradio's context no Gradio event can be running,
    and importing Gradio took about 2 s of CPU in every script, worker and Ray replica that
    streams a run outside an app."""
    context = sys.modules.get("gradio.context")
    return None if context is None else getattr(context.LocalContext, name).get(None)


def session_of(request: Any) -> str | None:
    """A ``gr.Request``'s session hash, or None when it has none."""
    session = getattr(request, "session_hash", None)
    return session if isinstance(session, str) and session else None


def current_client(trusted_proxies: tuple[str, ...] = ()) -> str | None:
    """The network address of the client of the Gradio event running this code (see
    ``client_of``), or None outside one."""
    return client_of(_gradio_request(), trusted_proxies)


def client_of(request: Any, trusted_proxies: tuple[str, ...] = ()) -> str | None:
    """The address a request came from: its direct peer, or, when that peer is one of
    ``trusted_proxies``, the nearest address in ``X-Forwarded-For`` that is not (the header
    is anyone's to write, so only a trusted proxy's is read). ``"private"`` trusts private and
    loopback addresses (a Space, whose platform proxy is the only direct peer). Uvicorn, which
    serves Gradio, already reads the header from a loopback peer (its ``forwarded_allow_ips``
    default), so a local reverse proxy's clients arrive here with their own address."""
    host = getattr(getattr(request, "client", None), "host", None)
    if not isinstance(host, str) or not host:
        return None
    headers = getattr(request, "headers", None)
    forwarded = headers.get("x-forwarded-for", "") if headers is not None else ""
    hops = [hop.strip() for hop in str(forwarded).split(",") if hop.strip()]
    while hops and is_trusted(host, trusted_proxies):
        host = hops.pop()
    return host


def is_trusted(address: str, trusted_proxies: tuple[str, ...]) -> bool:
    """Whether ``address`` is one of ``trusted_proxies`` (addresses, networks or ``private``)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted_proxies:
        for network in PRIVATE_NETWORKS if entry == "private" else (entry,):
            try:
                if ip in ipaddress.ip_network(network, strict=False):
                    return True
            except (ValueError, TypeError):
                continue
    return False


PRIVATE_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "::1/128",
    "fc00::/7",
)
"""What ``"private"`` trusts: private, shared (carrier NAT) and loopback networks, where a
platform's proxy lives (not ``ipaddress``'s wider ``is_private``, which also takes the
documentation ranges)."""
