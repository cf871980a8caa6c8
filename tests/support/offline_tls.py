"""The suite's TLS contexts: the test processes' httpx clients share the context httpx builds,
one per setting, instead of building a new one for every client.

No test makes a TLS connection (the machine is offline and every server the tests start is
plain HTTP on loopback), yet httpx builds a TLS context for every client it opens, loading the
whole CA bundle (13 ms of CPU with certifi's 140-odd certificates), and gradio_client opens a
client for each request: a tenth of a serial profile's samples. The shared context is the one
httpx itself builds for the same ``verify``, ``trust_env`` and ``SSL_CERT_FILE``/``SSL_CERT_DIR``
(an ``SSLContext`` may be shared by any number of connections). Apps and scripts the tests start
are unchanged, as is any client given a context of its own. The remote Gradio backend's test
that its clients share one context (``test_a_run_builds_no_tls_context``) turns this off.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx._transports.default as transports
from httpx._config import create_ssl_context

BUILD = create_ssl_context
"""httpx's own builder, which the transports call again where this is off."""


def share_tls_contexts() -> None:
    """Make httpx's transports (every ``httpx.Client`` and ``httpx.get``) share contexts."""
    built: dict[tuple, ssl.SSLContext] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if not isinstance(verify, bool) or cert is not None:
            return BUILD(verify=verify, cert=cert, trust_env=trust_env)
        where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        key = (verify, trust_env, where if trust_env else None)
        if key not in built:
            built[key] = BUILD(verify=verify, trust_env=trust_env)
        return built[key]

    transports.create_ssl_context = shared
