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


def run(monkeypatch, provider: str = "auto", model: str = SCHNELL, **fields):
    """The last state of ``stream("hf-inference", ...)``, the backend configured by the
    environment as a server is (only HF_TOKEN and the provider)."""
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
    return states[-1]


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
