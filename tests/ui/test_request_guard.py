"""Issue #25 through a real server: every byte a visitor sends is bounded (uploads, bodies,
session hashes, event data), calls the app cannot serve get a plain 4xx instead of a 500 and a
traceback, and one client (one address) holds at most ``runs_per_client`` places, whatever
session hashes it sends."""

from __future__ import annotations

import json
import logging
import time

import gradio as gr
import httpx
import pytest
from public_app import Visitor, build_app, launched
from toy_backends import CountingBackend, Gate, registry_with

from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.request_guard import use_policy

BODY_BOUND = 20_000
FILE_BOUND = 50_000


@pytest.fixture(scope="module")
def gate():
    gate = Gate()
    yield gate
    gate.open()


@pytest.fixture(scope="module")
def policy():
    return Policy(
        catalogue=[CatalogueEntry(id="flat", backend="counting", model="flat")],
        limits=Limits(max_steps=500),
        max_queue=8,
        runs_per_client=2,
        max_body_bytes=BODY_BOUND,
        max_file_size=FILE_BOUND,
    )


@pytest.fixture(scope="module")
def app_url(policy, gate):
    app = build_app(policy, registry_with(CountingBackend(gate=gate)), "counting")
    with app:
        use_policy(policy)
    with launched(app) as url:
        yield url


@pytest.fixture
def http(app_url):
    with httpx.Client(base_url=app_url, timeout=60) as client:
        yield client


@pytest.fixture
def caplog_errors(caplog):
    caplog.set_level(logging.ERROR)
    return caplog


def test_an_app_without_an_upload_control_takes_no_upload(http):
    for name, size in (("evil.html", 10_000), ("big.bin", 200_000)):
        answer = http.post("/gradio_api/upload", files={"files": (name, b"x" * size)})
        assert answer.status_code == 403, answer.text
        assert answer.text == "This app takes no uploads."


def test_an_app_with_an_upload_control_bounds_each_upload():
    policy = Policy(
        catalogue=[CatalogueEntry(id="flat", backend="counting", model="flat")],
        max_file_size=FILE_BOUND,
    )
    with gr.Blocks() as app:
        picture = gr.File()
        out = gr.Textbox()
        picture.upload(lambda f: str(f), picture, out)
        use_policy(policy)
    from gradio_diffusion_preview import DiffusionPreview

    with app:
        DiffusionPreview()
    with launched(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        small = http.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 1000)})
        assert small.status_code == 200, small.text
        big = http.post("/gradio_api/upload", files={"files": ("b.bin", b"x" * (FILE_BOUND * 4))})
        assert big.status_code == 413, big.text


def test_a_body_over_the_bound_is_refused_with_413_before_it_is_read(http, caplog_errors):
    big = json.dumps({"data": ["a" * (BODY_BOUND * 3), "flat", 2], "fn_index": 0})
    for path in ("/gradio_api/call/generate", "/gradio_api/queue/join"):
        answer = http.post(path, content=big, headers={"content-type": "application/json"})
        assert answer.status_code == 413, (path, answer.text)
        assert "too large" in answer.text

    def chunks():  # no Content-Length: the chunks are counted
        for _ in range(10):
            yield b"[" + b" " * (BODY_BOUND // 4)

    answer = http.post(
        "/gradio_api/call/generate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413, answer.text
    assert not [r for r in caplog_errors.records if r.levelno >= logging.ERROR]


def test_an_unknown_endpoint_or_fn_index_gets_404_not_500(http, caplog_errors):
    for path, body in (
        ("/gradio_api/call/nope", {"data": []}),
        ("/gradio_api/run/nope", {"data": []}),
        ("/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "s1"}),
        ("/gradio_api/run/predict", {"data": [], "fn_index": 999, "session_hash": "s1"}),
    ):
        answer = http.post(path, json=body)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        assert "No such endpoint" in answer.text
    assert not [r for r in caplog_errors.records if r.levelno >= logging.ERROR]


def test_a_rest_call_with_too_few_inputs_names_them(http):
    answer = http.post("/gradio_api/call/generate", json={"data": ["a"]})
    assert answer.status_code == 422, answer.text
    assert "takes 3 inputs" in answer.text and "sent 1" in answer.text


def test_an_oversized_session_hash_or_event_data_is_refused(http, app_url):
    fn = Visitor(app_url, "probe").fn_index(api_name="generate")
    long_hash = {"data": ["a", "flat", 2], "fn_index": fn, "session_hash": "s" * 10_000}
    answer = http.post("/gradio_api/queue/join", json=long_hash)
    assert answer.status_code == 400 and "session hash" in answer.text, answer.text
    answer = http.get("/gradio_api/queue/data", params={"session_hash": "s" * 10_000})
    assert answer.status_code == 400, answer.text
    fat = {
        "data": ["a", "flat", 2],
        "fn_index": fn,
        "session_hash": "ok",
        "event_data": "e" * 15_000,
    }
    answer = http.post("/gradio_api/queue/join", json=fat)
    assert answer.status_code == 400 and "Event data" in answer.text, answer.text


def test_one_client_with_twenty_sessions_holds_only_its_share(app_url, policy, gate):
    """Every join comes from 127.0.0.1: one client, 20 session hashes (as the attack script
    did). It gets ``runs_per_client`` places; another client (another address, given by
    uvicorn's trusted loopback proxy header) still gets in."""
    visitors = [Visitor(app_url, f"script{i}") for i in range(20)]
    fn = visitors[0].fn_index(api_name="generate")
    for visitor in visitors:
        visitor.join(fn, ["a", "flat", 3])
    deadline = time.monotonic() + 60
    while policy.queue.active("counting") != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert policy.queue.active("counting") == (1, 1)  # 2 places: 1 running, 1 waiting

    other = Visitor(app_url, "neighbour")
    other.http.headers["x-forwarded-for"] = "203.0.113.7"
    other.join(fn, ["a", "flat", 3])
    deadline = time.monotonic() + 60
    while policy.queue.active("counting") != (1, 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert policy.queue.active("counting") == (1, 2)
    gate.open()
    deadline = time.monotonic() + 60
    while policy.queue.active("counting") != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert policy.queue.active("counting") == (0, 0)
    for visitor in [*visitors, other]:
        visitor.close()


def test_x_forwarded_for_is_read_only_from_a_trusted_proxy():
    from types import SimpleNamespace

    from gradio_diffusion_preview.ownership import client_of

    def request(peer: str, forwarded: str | None) -> SimpleNamespace:
        headers = {"x-forwarded-for": forwarded} if forwarded else {}
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)

    spoofed = request("203.0.113.9", "198.51.100.1")
    assert client_of(spoofed, ("10.0.0.0/8",)) == "203.0.113.9"  # not a proxy: header ignored
    via_proxy = request("10.1.2.3", "198.51.100.1, 10.0.0.7")
    assert client_of(via_proxy, ("10.0.0.0/8",)) == "198.51.100.1"  # nearest untrusted hop
    assert client_of(via_proxy, ("private",)) == "198.51.100.1"
    assert client_of(via_proxy, ()) == "10.1.2.3"
    assert client_of(request("10.1.2.3", "garbage, 198.51.100.1"), ("private",)) == "198.51.100.1"
    assert client_of(SimpleNamespace(), ()) is None
