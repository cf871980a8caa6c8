"""The demo's Edit tab with a Hugging Face token: the catalogue's Inference editing models (FLUX.1
Kontext [dev], Qwen-Image-Edit) are offered and usable, and an edit through ``/edit`` runs
huggingface_hub's own image-to-image provider code over the replayed answers
(tests/support/hf_replay.py); the Generate and Compare tabs do not offer them."""

from __future__ import annotations

import gradio as gr
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from hf_replay import edit_replay, replay
from testenv import load_demo_module

from gradio_diffusion_preview import controls
from gradio_diffusion_preview.generate_tab import generate_tab, image_entries

EDITORS = ["flux-kontext", "qwen-image-edit"]


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


@pytest.fixture
def served(monkeypatch):
    yield from replay(monkeypatch, edit_replay())


def test_with_a_token_the_edit_tab_offers_the_inference_editing_models(served, demo_module):
    policy = demo_module.demo_policy()
    takers = [entry.id for entry in image_entries(policy)]
    assert [entry for entry in takers if entry in EDITORS] == EDITORS
    assert not {"flux-schnell", "sdxl"} & set(takers)  # text-to-image only
    assert controls.unavailable_reason("hf-inference") is None  # the token is set, online
    with gr.Blocks():
        tab = generate_tab(demo_module.demo_policy(), edit=True)
    offered = [value for _, value in tab.model.choices]
    assert [entry for entry in offered if entry in EDITORS] == EDITORS


def test_an_edit_on_flux_kontext_runs_through_the_edit_endpoint(
    served, serve, demo_module, tmp_path
):
    path = tmp_path / "circle.png"
    demo_module.edit_sample().resize((320, 256)).save(path)
    url = serve(demo_module.build_demo())
    # backend, model, prompt, negative, steps, guidance, seed, images, options, image, strength
    job = Client(url, verbose=False).submit(
        *("hf-inference", "flux-kontext", "make the circle a blue star", "", 20, 2.5, 5, 1),
        *("", handle_file(str(path)), 0.6),  # the strength slider's value: Kontext takes none
        api_name="/edit",
    )
    final = job.result(timeout=120)
    assert final["status"] == "done", final["message"]
    assert served.provider_calls() == ["fal-ai"]  # the first provider the Hub lists
    with PIL.Image.open(final["images"][0]) as image:
        assert image.size == (320, 256)  # the input's size


def test_the_generate_and_compare_tabs_do_not_offer_models_that_only_edit(served, demo_module):
    """Inference serves its editing models for image-to-image only: a prompt alone is refused
    for them (naming the fix), and the tabs that take no picture do not offer them."""
    from gradio_diffusion_preview import stream
    from gradio_diffusion_preview.compare_tab import compare_tab

    policy = demo_module.demo_policy()
    with gr.Blocks():
        generate = generate_tab(policy)
        compare = compare_tab(policy)
    for offered in (generate.model.choices, compare.models.choices):
        ids = [value for _, value in offered]
        assert "flux-schnell" in ids and not set(EDITORS) & set(ids), ids
    last = list(stream("hf-inference", policy=policy, model="flux-kontext", prompt="a fox"))[-1]
    assert last.status == "error" and last.reason == "invalid_request", last
    assert "only edits pictures" in last.message and "give init_image" in last.message
    assert served.provider_calls() == []
