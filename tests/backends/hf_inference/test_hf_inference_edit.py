"""Image-to-image and instruction editing on the hf-inference backend: huggingface_hub's own
``image_to_image`` provider code against answers in the shapes the services give
(tests/support/hf_replay.py ``edit_replay``, recorded/image_to_image.json), with no
``router_url``. Every provider huggingface_hub 2.4 calls for image-to-image must receive the
input picture and finish with an image of the input's size; failures end as for text-to-image;
the strength reaches the providers that take one, under their name for it."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import PIL.Image
import pytest
from hf_replay import KONTEXT, ROUTER, SCHNELL, edit_replay, edited_png, json_answer, replay
from hf_replay import no_address as private_free

from gradio_diffusion_preview import Registry, stream
from gradio_diffusion_preview.backend import ModelDefaults
from gradio_diffusion_preview.backends.hf_inference.backend import HfInferenceBackend
from gradio_diffusion_preview.backends.hf_inference.catalogue import EDITING
from gradio_diffusion_preview.backends.hf_inference.settings import (
    IMAGE_TO_IMAGE_PROVIDERS,
    HfModel,
)
from gradio_diffusion_preview.testing import check_image_to_image, check_image_to_image_preview

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

IMG2IMG = "acme/flux-img2img"
"""A configured image-to-image model (strength); served at Kontext's provider routes, whose
wire shapes are the task's, whatever the model."""
FAL = f"{ROUTER}/fal-ai/fal-ai/flux-kontext/dev"
FAL_STATUS = f"{ROUTER}/fal-ai/fal-ai/flux-kontext/requests/8c4d7e0a-5f7b-4b0e-9a51-2f3c1d9e6b42"
TOGETHER = f"{ROUTER}/together/v1/images/generations"
WAVESPEED_POLL = f"{ROUTER}/wavespeed/api/v3/predictions/e2/result"


@pytest.fixture
def served(monkeypatch):
    served = edit_replay()
    mapping = [(m["provider"], m["providerId"], "live") for m in served.mappings[KONTEXT]]
    served.serve(IMG2IMG, *mapping, task="image-to-image")
    served.answer("POST", f"{ROUTER}/hf-inference/models/{IMG2IMG}", edited_png)
    yield from replay(monkeypatch, served)


def backend(provider: str = "auto") -> HfInferenceBackend:
    """The backend as a server configures it: the catalogue's editing models, a text-to-image
    one, and an image-to-image model with a strength."""
    models = [
        HfModel(id=SCHNELL),
        *EDITING,
        HfModel(id=IMG2IMG, name="img2img", defaults=ModelDefaults(image_to_image=True)),
    ]
    return HfInferenceBackend(provider=provider, models=models, id="hf-edit")


def picture(size=(320, 256)) -> PIL.Image.Image:
    """Red over blue: a picture whose every pixel is known."""
    image = PIL.Image.new("RGB", size, (40, 60, 210))
    image.paste((210, 40, 40), (0, 0, size[0], size[1] // 2))
    return image


def edit(provider: str = "auto", model: str = KONTEXT, **fields):
    registry = Registry(load_entry_points=False)
    registry.add_backends(backend(provider))
    fields = {"prompt": "make the circle a blue star", "init_image": picture(), **fields}
    return list(stream("hf-edit", registry=registry, model=model, seed=7, **fields))


def sent_picture(served, provider: str) -> tuple[PIL.Image.Image, dict]:
    """The input image the provider's POST carried, and the request's other fields."""
    [body] = [
        body
        for (method, url, _), body in zip(served.requests, served.bodies, strict=True)
        if method == "POST" and url.startswith(f"{ROUTER}/{provider}/")
    ]
    payload = json.loads(body)
    fields = payload.get("input", payload)  # replicate nests its fields under "input"
    if provider == "hf-inference":
        data, fields = payload["inputs"], payload["parameters"]
    else:
        key = {"together": "image_url", "wavespeed": "image"}.get(provider, "image_url")
        if provider == "replicate":
            key = "image"
        header, data = fields[key].split(",", 1)
        assert header.startswith("data:image/")
    return PIL.Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), fields


@pytest.mark.parametrize("provider", IMAGE_TO_IMAGE_PROVIDERS)
def test_every_provider_gets_the_input_and_finishes_at_its_size(served, provider):
    states = edit(provider)
    last = states[-1]
    assert last.status == "done", (last.reason, last.message)
    [image] = last.images
    assert image.size == (320, 256)
    assert served.provider_calls() == [provider]
    sent, fields = sent_picture(served, provider)
    assert np.array_equal(np.asarray(sent), np.asarray(picture()))
    assert not {"strength", "prompt_strength"} & set(fields), "instruction editing: no strength"
    assert "make the circle a blue star" in json.dumps(fields)


def test_data_urls_say_png():
    """huggingface_hub labels bytes it cannot type as JPEG: the input says it is PNG."""
    from huggingface_hub.inference._common import _as_url

    from gradio_diffusion_preview.backends.hf_inference.editing import input_bytes

    assert _as_url(input_bytes(picture()), "image/jpeg").startswith("data:image/png;base64,")


def test_hf_inference_makes_the_edit_at_the_asked_size_from_the_input(served):
    last = edit("hf-inference", IMG2IMG, strength=0.4)[-1]
    assert last.status == "done", (last.reason, last.message)
    _, fields = sent_picture(served, "hf-inference")
    assert fields["target_size"] == {"width": 320, "height": 256}
    assert fields["strength"] == 0.4 and fields["seed"] == 7
    # The answer is the inverted input: the result came from the picture sent.
    assert last.images[0].getpixel((0, 0)) == (255 - 210, 255 - 40, 255 - 40)


@pytest.mark.parametrize(
    ("provider", "name"),
    [("hf-inference", "strength"), ("fal-ai", "strength"), ("replicate", "prompt_strength")],
)
def test_the_strength_goes_under_the_providers_name(served, provider, name):
    last = edit(provider, IMG2IMG, strength=0.35)[-1]
    assert last.status == "done", (last.reason, last.message)
    _, fields = sent_picture(served, provider)
    assert fields[name] == 0.35


@pytest.mark.parametrize("provider", ["together", "wavespeed"])
def test_providers_without_a_strength_get_none(served, provider):
    last = edit(provider, IMG2IMG, strength=0.35)[-1]
    assert last.status == "done", (last.reason, last.message)
    _, fields = sent_picture(served, provider)
    assert not {"strength", "prompt_strength"} & set(fields)


def test_auto_routes_an_edit_to_a_provider_of_image_to_image(served):
    """nscale serves no image-to-image in huggingface_hub 2.4: auto passes it over."""
    served.serve(
        KONTEXT,
        ("nscale", "flux-kontext", "live"),
        ("together", "black-forest-labs/FLUX.1-kontext-dev", "live"),
        task="image-to-image",
    )
    states = edit("auto")
    assert states[-1].status == "done", (states[-1].reason, states[-1].message)
    assert served.provider_calls() == ["together"]
    said = [s.message for s in states if s.message and "nscale" in s.message]
    assert said and "image-to-image" in said[0], [s.message for s in states]


def test_a_text_to_image_model_refuses_an_input_image_before_any_call(served):
    last = edit("fal-ai", SCHNELL)[-1]
    assert last.status == "error" and last.reason == "invalid_request", last
    assert "init_image" in last.message and "Fix:" in last.message
    assert served.provider_calls() == []


def test_an_editing_model_without_an_input_image_says_to_give_one(served):
    last = edit("fal-ai", KONTEXT, init_image=None)[-1]
    assert last.status == "error" and last.reason == "invalid_request", last
    assert "init_image" in last.message and "Fix:" in last.message
    assert served.provider_calls() == []


def test_an_editing_model_refuses_a_strength(served):
    last = edit("fal-ai", KONTEXT, strength=0.5)[-1]
    assert last.status == "error" and "strength" in last.message, last
    assert served.provider_calls() == []


def failed(state, reason: str, *words: str) -> None:
    assert state.status == "error", state
    assert state.reason == reason, (state.reason, state.message)
    assert "Fix:" in state.message and private_free(state.message), state.message
    for word in words:
        assert word in state.message, (word, state.message)


def test_a_failed_fal_queue_poll_is_the_providers_failure(served):
    served.answer("GET", f"{FAL_STATUS}/status", json_answer({"detail": "internal"}, 500))
    failed(edit("fal-ai")[-1], "remote_error", "fal-ai")


def test_a_422_names_the_parameter(served):
    detail = "image_url: Input should be a valid URL"
    served.answer("POST", TOGETHER, json_answer({"error": {"message": detail}}, 422))
    failed(edit("together")[-1], "invalid_request", "image_url")


def test_an_nsfw_edit_is_content_filtered(served):
    served.answer(
        "GET",
        WAVESPEED_POLL,
        json_answer({"data": {"status": "failed", "error": "NSFW content detected"}}),
    )
    failed(edit("wavespeed")[-1], "content_filtered", "rephrase")


def test_a_refused_token_is_unauthorized(served):
    served.answer("POST", FAL, json_answer({"detail": "Invalid credentials"}, 401))
    failed(edit("fal-ai")[-1], "unauthorized")


def test_capabilities_say_which_models_take_an_image():
    inference = backend()
    assert not inference.capabilities_for(SCHNELL).image_to_image
    assert not inference.capabilities_for(SCHNELL).instruction_editing
    kontext = inference.capabilities_for(KONTEXT)
    assert kontext.instruction_editing and not kontext.image_to_image
    assert inference.capabilities_for(IMG2IMG).image_to_image


def test_the_providers_are_the_installed_huggingface_hubs():
    from huggingface_hub.inference._providers import PROVIDERS

    served = {name for name, tasks in PROVIDERS.items() if "image-to-image" in tasks}
    assert set(IMAGE_TO_IMAGE_PROVIDERS) == served


def test_the_kits_image_to_image_checks_pass(served):
    inference = backend("hf-inference")
    assert check_image_to_image(inference, model=IMG2IMG, prompt="a blue star") is None
    skipped = check_image_to_image_preview(inference, model=IMG2IMG, prompt="a blue star")
    assert skipped == "capabilities.step_previews is False"
