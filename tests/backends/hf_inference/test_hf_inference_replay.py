"""The hf-inference backend as a user with only HF_TOKEN reaches it: huggingface_hub's own
provider code against answers recorded from the services (tests/support/hf_replay.py), with no
``router_url``. Every provider huggingface_hub 2.4 supports for text-to-image, and "auto", must
finish with the recorded image; every failure must end with its reason, a message naming the
fix, and no address or token."""

from __future__ import annotations

import pytest
from hf_replay import DELIVERY, ROUTER, SCHNELL, SDXL, TOKEN, default_replay, json_answer, replay
from hf_replay import no_address as private_free

from gradio_diffusion_preview import Registry, stream
from gradio_diffusion_preview.backends.hf_inference.settings import TEXT_TO_IMAGE_PROVIDERS


@pytest.fixture
def served(monkeypatch):
    yield from replay(monkeypatch)


def run(monkeypatch, provider: str = "auto", model: str = SCHNELL, every: bool = False):
    """The last state (or ``every`` state) of ``stream("hf-inference", ...)``, the backend
    configured by the environment as a server is (only HF_TOKEN and the provider)."""
    monkeypatch.setenv("DIFFUSION_PREVIEW_HF_PROVIDER", provider)
    monkeypatch.setenv("DIFFUSION_PREVIEW_HF_MODELS", f"{SCHNELL},{SDXL}")
    registry = Registry(load_entry_points=False)
    states = list(
        stream(
            "hf-inference",
            registry=registry,
            prompt="An astronaut riding a horse on the moon.",
            model=model,
            width=512,
            height=512,
            seed=7,
        )
    )
    return states if every else states[-1]


def failed(state, reason: str, *words: str) -> None:
    assert state.status == "error", state
    assert state.reason == reason, (state.reason, state.message)
    assert "Fix:" in state.message, state.message
    assert private_free(state.message), state.message
    for word in words:
        assert word in state.message, (word, state.message)


@pytest.mark.parametrize("provider", TEXT_TO_IMAGE_PROVIDERS)
def test_every_supported_provider_finishes_with_the_recorded_image(served, monkeypatch, provider):
    last = run(monkeypatch, provider)
    assert last.status == "done", (last.reason, last.message)
    assert len(last.images) == 1
    assert served.provider_calls() == [provider]
    assert all(ok for method, url, ok in served.requests if url.startswith(ROUTER)), served.requests


def test_auto_takes_the_first_provider_the_hub_lists(served, monkeypatch):
    last = run(monkeypatch, "auto", SDXL)
    assert last.status == "done", (last.reason, last.message)
    assert served.provider_calls() == ["fal-ai"]


FAL = f"{ROUTER}/fal-ai/fal-ai/flux/schnell"
TOGETHER = f"{ROUTER}/together/v1/images/generations"
REPLICATE = f"{ROUTER}/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
WAVESPEED_POLL = f"{ROUTER}/wavespeed/api/v3/predictions/w1/result"
ZAI = f"{ROUTER}/zai-org/api/paas/v4/async/images/generations"


@pytest.mark.parametrize(
    ("first", "status"),
    [("nebius", "live"), ("fal-ai", "staging"), ("fal-ai", "error")],
    ids=["unsupported-provider", "staging", "health-error"],
)
def test_auto_skips_a_provider_it_cannot_use_and_says_so(served, monkeypatch, first, status):
    """SDXL's mapping starts with nebius, which huggingface_hub 2.4 cannot call (or with an
    entry not live): auto routes to the next live provider it supports."""
    served.serve(SDXL, (first, "stabilityai/sdxl", status), ("together", SDXL, "live"))
    states = run(monkeypatch, "auto", SDXL, every=True)
    assert states[-1].status == "done", (states[-1].reason, states[-1].message)
    assert served.provider_calls() == ["together"]
    said = [s.message for s in states if s.message and first in s.message]
    assert said and "together" in said[0], [s.message for s in states]


def test_auto_with_no_usable_provider_names_what_was_skipped(served, monkeypatch):
    served.serve(SDXL, ("nebius", "stabilityai/sdxl", "live"), ("together", SDXL, "staging"))
    last = run(monkeypatch, "auto", SDXL)
    failed(last, "model_not_found", "nebius", "together")
    assert served.provider_calls() == []


def test_messages_name_the_provider_called_not_auto(served, monkeypatch):
    served.answer("POST", FAL, json_answer({"detail": "Internal error"}, 500))
    last = run(monkeypatch, "auto")
    failed(last, "remote_error", "fal-ai")
    assert "provider auto" not in last.message


@pytest.mark.parametrize(
    ("provider", "url", "body"),
    [
        ("fal-ai", FAL, {"images": [], "seed": 1}),
        ("fal-ai", FAL, {"detail": "ok", "seed": 1}),
        ("together", TOGETHER, {"data": [{"index": 0}]}),
        ("together", TOGETHER, {"data": []}),
        ("zai-org", ZAI, {"id": "z1", "task_status": "FAIL"}),
    ],
    ids=["fal-no-image", "fal-no-images-key", "together-no-b64", "together-empty", "zai-fail"],
)
def test_a_provider_answer_without_an_image_is_the_providers_failure(
    served, monkeypatch, provider, url, body
):
    served.answer("POST", url, json_answer(body))
    failed(run(monkeypatch, provider), "remote_error", provider, "another provider")


def test_a_failed_poll_is_the_providers_failure_and_names_no_address(served, monkeypatch):
    served.answer("GET", WAVESPEED_POLL, json_answer({"message": "internal"}, 500))
    failed(run(monkeypatch, "wavespeed"), "remote_error", "wavespeed")


def test_wavespeed_nsfw_is_content_filtered(served, monkeypatch):
    served.answer(
        "GET",
        WAVESPEED_POLL,
        json_answer({"data": {"status": "failed", "error": "NSFW content detected"}}),
    )
    failed(run(monkeypatch, "wavespeed"), "content_filtered", "rephrase")


def test_a_failed_replicate_prediction_is_not_a_timeout(served, monkeypatch):
    served.answer(
        "POST",
        REPLICATE,
        json_answer({"id": "p1", "status": "failed", "output": None, "error": "CUDA OOM"}, 201),
    )
    failed(run(monkeypatch, "replicate"), "remote_error", "replicate", "prediction failed")


@pytest.mark.parametrize(
    ("provider", "url", "detail", "named"),
    [
        (
            "fal-ai",
            FAL,
            [
                {
                    "loc": ["body", "num_inference_steps"],
                    "msg": "ensure this value is less than or equal to 12",
                    "type": "value_error.number.not_le",
                }
            ],
            "num_inference_steps",
        ),
        (
            "replicate",
            REPLICATE,
            "input.num_inference_steps: Must be less than or equal to 10",
            "input.num_inference_steps: Must be less than or equal to 10",
        ),
    ],
    ids=["fal-detail-list", "replicate-detail-string"],
)
def test_a_422_names_the_parameter(served, monkeypatch, provider, url, detail, named):
    served.answer("POST", url, json_answer({"detail": detail}, 422))
    failed(run(monkeypatch, provider), "invalid_request", named)


def test_an_image_address_answering_an_xml_404_says_so_without_the_address(served, monkeypatch):
    import httpx2

    served.answer(
        "GET",
        DELIVERY.split("?")[0],
        lambda request: httpx2.Response(
            404,
            content=b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>',
            headers={"content-type": "application/xml"},
        ),
    )
    last = run(monkeypatch, "wavespeed")
    failed(last, "remote_error", "XML", "NoSuchKey", "wavespeed")
    assert "JSON" not in last.message


def test_a_stale_mapping_is_dropped_on_404_and_the_route_tried_once_more(served, monkeypatch):
    """fal-ai left the model's mapping: its route answers 404. The cached mapping is dropped,
    the Hub asked again, and the run goes to the provider it lists now."""
    served.serve(SCHNELL, ("fal-ai", "fal-ai/flux/schnell", "live"), ("together", SDXL, "live"))
    first = run(monkeypatch, "auto")
    assert first.status == "done" and served.provider_calls() == ["fal-ai"]
    served.answer("POST", FAL, json_answer({"detail": "Not Found"}, 404))
    served.serve(SCHNELL, ("together", SCHNELL, "live"))
    last = run(monkeypatch, "auto")
    assert last.status == "done", (last.reason, last.message)
    assert served.provider_calls() == ["fal-ai", "fal-ai", "together"]


def test_no_message_carries_the_token(served, monkeypatch):
    served.answer("POST", FAL, json_answer({"detail": f"bad key {TOKEN}"}, 401))
    failed(run(monkeypatch, "fal-ai"), "unauthorized")


def test_a_fresh_replay_answers_as_recorded():
    assert default_replay().mappings[SCHNELL][0]["provider"] == "fal-ai"


def test_a_failed_zai_poll_or_image_download_names_no_address(served, monkeypatch):
    """zai-org's helper raises httpx's own status error, whose text carries the full URL."""
    served.answer("GET", f"{ROUTER}/zai-org/api/paas/v4/async-result/z1", json_answer({}, 500))
    failed(run(monkeypatch, "zai-org"), "remote_error", "zai-org", "500")
    served.answer(
        "GET",
        f"{ROUTER}/zai-org/api/paas/v4/async-result/z1",
        json_answer({"id": "z1", "task_status": "SUCCESS", "image_result": [{"url": DELIVERY}]}),
    )
    served.answer("GET", DELIVERY.split("?")[0], json_answer({"error": "expired"}, 404))
    failed(run(monkeypatch, "zai-org"), "remote_error", "zai-org", "404")
