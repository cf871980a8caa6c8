"""The suite's TLS trust store: one CA certificate instead of certifi's bundle.

No test makes a TLS connection (the machine is offline and every server the tests start is
plain HTTP on loopback), yet httpx builds a TLS context for every client it opens, and
gradio_client opens one for each request: loading certifi's 140-odd CA certificates took 13 ms
of CPU each time, thousands of times a run (a tenth of a serial profile's samples). With
``SSL_CERT_FILE`` naming a file of one of those certificates (httpx, and OpenSSL's default
paths, read it) a context takes 0.25 ms. The test processes set it before anything else, so
the apps, scripts and clients they start inherit it; a value already set is kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def use_one_ca_certificate() -> None:
    """Point ``SSL_CERT_FILE`` at a file holding certifi's first certificate (written once per
    machine user, atomically), unless it is set already or certifi is missing."""
    if os.environ.get("SSL_CERT_FILE"):
        return
    try:
        import certifi
    except ImportError:
        return
    bundle = Path(certifi.where()).read_text()
    first = bundle[bundle.index(BEGIN) : bundle.index(END) + len(END)] + "\n"
    target = Path(tempfile.gettempdir()) / f"gdp-tests-one-ca-{os.getuid()}.pem"
    if not target.exists() or target.read_text() != first:
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(first)
        os.replace(partial, target)
    os.environ["SSL_CERT_FILE"] = str(target)
