"""In Chromium: a run that waited in its service's queue shows, once done, the time it ran and the
time it waited as two figures ("Time", then "Waited"); a run that never waited shows only its
time. The backend waits at a gate, so the queued view is seen whatever the machine's speed."""

from __future__ import annotations

import re

import pytest
from browser_helpers import TIMEOUT_MS, backend_app, generate
from playwright.sync_api import expect
from toy_backends import Gate, WaitingBackend

from gradio_diffusion_preview.events import Status

pytestmark = pytest.mark.browser

SECONDS = re.compile(r"^\d+(\.\d)?s$|^\d+m \d+s$")


def test_a_run_that_waited_in_the_services_queue_shows_its_wait_apart(open_page, serve):
    gate = Gate()
    queued = WaitingBackend(
        waits=[(Status("queued", position=1, queue_size=1), 0), (Status("generating"), 0)],
        gate=gate,
    )
    page = open_page(serve(backend_app(queued)))
    generate(page)
    expect(page.get_by_test_id("waiting-status")).to_have_attribute(
        "data-phase", "queued", timeout=TIMEOUT_MS
    )
    gate.release(1)  # it leaves the queue and generates
    expect(page.get_by_test_id("waiting-status")).to_have_attribute(
        "data-phase", "generating", timeout=TIMEOUT_MS
    )
    gate.release(1)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    names = page.get_by_test_id("generation-info").locator(".setting .label").all_inner_texts()
    assert names[-2:] == ["Time", "Waited"], names
    for figure in ("info-time", "info-waited"):
        assert SECONDS.match(page.get_by_test_id(figure).inner_text()), figure
    assert not page.errors
    page.close()


def test_a_run_that_never_waited_shows_only_its_time(open_page, serve):
    page = open_page(serve(backend_app(WaitingBackend(waits=[(Status("generating"), 0.0)]))))
    generate(page)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("info-time")).to_be_visible()
    assert page.get_by_test_id("info-waited").count() == 0
    assert not page.errors
    page.close()
