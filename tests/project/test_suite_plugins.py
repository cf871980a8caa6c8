"""The suite's own plugins (tests/support): the frozen heap and the shared TLS contexts are in
force in every test process."""

from __future__ import annotations

import gc
import ssl
import weakref

import httpx
import offline_tls


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_outlived_the_collection_is_frozen_and_new_garbage_is_still_collected():
    assert gc.get_freeze_count() > 10_000  # pytest, the test modules and their imports
    cycle = Cycle()
    dead = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert dead() is None, "a cycle made after the freeze was not collected"


def test_httpx_clients_share_the_context_httpx_builds_for_their_setting():
    build = offline_tls.transports.create_ssl_context  # what every httpx transport calls
    assert build(verify=True) is build(verify=True)
    assert build(verify=False) is not build(verify=True)
    assert build(verify=False).verify_mode == ssl.CERT_NONE
    own = ssl.create_default_context()
    assert build(verify=own) is own
    expected = offline_tls.BUILD(verify=True)
    assert build(verify=True).get_ca_certs() == expected.get_ca_certs()
    with httpx.Client() as client:  # a client's transport got it
        assert client._transport._pool._ssl_context is build(verify=True)
