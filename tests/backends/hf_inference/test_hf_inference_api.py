"""What an API user sees of the hf-inference backend: every failure through gradio_client, with
its message, reason and retry_after; a loading model's status while it waits; and the token
never showing anywhere (page, config, API info, streamed values, server log)."""

from __future__ import annotations

import logging
import secrets

import httpx
import pytest
from api_results import final_state
from fake_hf_router import (
    black_image,
    drop,
    error,
    inference_app,
    json_body,
    loading,
    rate_limited,
    serve_router,
    stall,
)
from gradio_client import Client
from testenv import launch_loopback

from gradio_diffusion_preview.backends.hf_inference.backend import HfInferenceBackend
from gradio_diffusion_preview.backends.hf_inference.catalogue import catalogue_entry
from gradio_diffusion_preview.backends.hf_inference.settings import HfModel

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

SCHNELL = "black-forest-labs/FLUX.1-schnell"
FLAKY = "acme/flaky"
SERVED = {SCHNELL: ("hf-inference",), FLAKY: ("hf-inference",)}
MODELS = [catalogue_entry(SCHNELL), HfModel(id=FLAKY), HfModel(id="acme/gone")]
TIMEOUT = 60.0
"""The run's deadline: far beyond any answer on this loaded machine, but for the stall test."""
STALL_TIMEOUT = 2.0


def launch(app) -> str:
    app.queue()
    return launch_loopback(app)


@pytest.fixture(scope="module")
def router():
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from serve_router(monkeypatch, SERVED)


@pytest.fixture(scope="module")
def client(router):
    backend = HfInferenceBackend(
        token=router.token, router_url=router.url, models=MODELS, timeout=TIMEOUT, max_wait=5
    )
    app = inference_app(backend)
    url = launch(app)
    yield Client(url, verbose=False, token=False)
    app.close()


def generate(client: Client, model: str = FLAKY):
    return final_state(
        client.submit("a lighthouse at dusk", model, 256, 256, 7, api_name="/generate")
    )


@pytest.mark.parametrize(
    "reply, reason, retry_after, says",
    [
        (
            error(401, "Invalid credentials in Authorization header"),
            "unauthorized",
            None,
            "HF_TOKEN",
        ),
        (error(403, "Forbidden"), "unauthorized", None, "Make calls to Inference Providers"),
        (error(402, "Credits exhausted"), "unauthorized", None, "settings/billing"),
        (error(404, "Model not found"), "model_not_found", None, f"Model '{FLAKY}'"),
        (error(410, "Model is gone"), "model_not_found", None, "choose another model"),
        (rate_limited(retry_after="3600"), "rate_limited", 3600.0, "try again in about 1 h"),
        (rate_limited(reset=55), "rate_limited", 55.0, "try again in about 55 s"),
        (loading(500), "unavailable", 500.0, "loading model"),
        (error(503, "Service overloaded"), "busy", None, "too busy"),
        (
            json_body({"error": "Input validation failed"}),
            "remote_error",
            None,
            "not an image: Input validation failed",
        ),
        (
            error(422, "width must be below 1025"),
            "invalid_request",
            None,
            "width must be below 1025",
        ),
        (error(500, "CUDA error"), "remote_error", None, "500: CUDA error"),
        (black_image(), "content_filtered", None, "safety filter"),
        (drop(), "unavailable", None, "refused or dropped"),
    ],
    ids=lambda value: getattr(value, "kind", None) and f"{value.kind}-{value.status}",
)
def test_each_failure_reaches_the_api_user_with_its_reason(
    client, router, reply, reason, retry_after, says
):
    router.script(FLAKY, reply)
    value = generate(client)
    assert value["status"] == "error", value
    assert (value["reason"], value["retry_after"]) == (reason, retry_after), value["message"]
    assert says in value["message"] and "Fix:" in value["message"]
    assert router.url not in value["message"], "addresses stay on the server"


def test_a_stalled_request_ends_at_the_runs_own_deadline(serve, router):
    backend = HfInferenceBackend(
        token=router.token, router_url=router.url, models=MODELS, timeout=STALL_TIMEOUT
    )
    client = Client(serve(inference_app(backend)), verbose=False, token=False)
    router.script(FLAKY, stall(30))
    value = generate(client)
    assert (value["status"], value["reason"], value["retry_after"]) == ("error", "timeout", None)
    assert f"within {STALL_TIMEOUT:g} s" in value["message"] and "Fix:" in value["message"]


def test_after_all_those_failures_the_server_still_serves(client, router):
    value = generate(client, SCHNELL)
    assert value["status"] == "done" and value["seeds"] == [7]
    assert not router.problems, "every request had the router's shape"


def test_a_model_no_provider_serves_is_named_with_the_way_to_the_catalogue(client):
    value = generate(client, "acme/gone")
    assert value["reason"] == "model_not_found"
    assert (
        "'acme/gone'" in value["message"] and "gradio_diffusion_preview plugins" in value["message"]
    )


def test_a_loading_model_shows_its_estimate_while_the_run_waits(client, router):
    router.script(SCHNELL, loading(1.2))
    job = client.submit("a lighthouse", SCHNELL, 256, 256, 7, api_name="/generate")
    final = job.result(timeout=30)
    assert final["status"] == "done" and final["step"] == 0
    waiting = [v for v in job.outputs() if v["phase"] == "loading"]
    assert waiting, [v["phase"] for v in job.outputs()]
    assert waiting[0]["message"] == "Loading the model, about 1 s…"
    assert 0 < waiting[0]["eta"] <= 1.2 and waiting[0]["status"] == "running"
    phases = [v["phase"] for v in job.outputs()]
    assert phases.index("loading") > phases.index("generating")


def test_without_a_token_the_api_user_learns_how_to_set_one(serve, monkeypatch, tmp_path):
    from huggingface_hub import constants

    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "none"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    url = serve(inference_app(HfInferenceBackend(models=MODELS)))
    value = generate(Client(url, verbose=False, token=False), SCHNELL)
    assert (value["status"], value["reason"]) == ("error", "unauthorized")
    assert "HF_TOKEN" in value["message"] and "hf auth login" in value["message"]


def test_offline_mode_tells_the_api_user_why(serve, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it
    url = serve(inference_app(HfInferenceBackend(token="hf_unused", models=MODELS)))
    value = generate(Client(url, verbose=False, token=False), SCHNELL)
    assert (value["status"], value["reason"]) == ("error", "unavailable")
    assert "HF_HUB_OFFLINE" in value["message"]


@pytest.fixture
def canary(monkeypatch) -> str:
    """A token in the server's environment, found by huggingface_hub's discovery."""
    token = "hf_canary" + secrets.token_hex(12)
    monkeypatch.setenv("HF_TOKEN", token)
    return token


@pytest.fixture
def canary_router(monkeypatch, canary):
    yield from serve_router(monkeypatch, SERVED, token=canary)


def test_the_token_appears_nowhere(serve, canary, canary_router, caplog, capfd):
    """The canary token: not in the page, /config, the API info, any streamed value of a
    failing or a succeeding run, nor the server's log or output."""
    router = canary_router
    caplog.set_level(logging.DEBUG)
    backend = HfInferenceBackend(router_url=router.url, models=MODELS)  # token from HF_TOKEN
    url = serve(inference_app(backend))
    seen = [httpx.get(url + path, timeout=30).text for path in ("/", "/config")]
    seen.append(httpx.get(url + "/gradio_api/info", timeout=30).text)
    client = Client(url, verbose=False, token=False)
    # First the router wants another token, and echoes the one it got in its 401 (a careless
    # server); then it takes the canary and the run succeeds.
    router.token, router.echo_token_in_errors = "hf_another" + secrets.token_hex(8), True
    failing = client.submit("a lighthouse", SCHNELL, 256, 256, 7, api_name="/generate")
    failed = final_state(failing, 30)
    router.token = canary
    succeeding = client.submit("a lighthouse", SCHNELL, 256, 256, 8, api_name="/generate")
    done = succeeding.result(timeout=30)
    assert failed["reason"] == "unauthorized" and "(Bearer hf_***)" in failed["message"]
    assert done["status"] == "done"
    assert router.posts()[-1].headers["authorization"] == f"Bearer {canary}", "it was sent"
    values = [failed, done, *failing.outputs(), *succeeding.outputs()]
    seen += [repr(value) for value in values]
    seen.append(repr(backend.describe()) + repr(backend))
    captured = capfd.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    seen += [record.getMessage() for record in caplog.records]
    assert not [text[:200] for text in seen if canary in text]
