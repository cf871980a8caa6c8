"""Compare for edits (issue 27): ``compare_tab(policy, edit=True)`` sends one uploaded picture and
one strength to 2 to 4 models that take an image, side by side, on the API as
``/compare_edit``: each panel edits the picture (its result has the picture's size, its strength
recorded), only image-taking models are offered, and no picture is refused naming the fix."""

from __future__ import annotations

import gradio as gr
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from testenv import load_demo_module

from gradio_diffusion_preview.compare_tab import compare_tab
from gradio_diffusion_preview.generate_tab import image_entries
from gradio_diffusion_preview.policy import CatalogueEntry, Policy

MODELS = ["shapes", "shapes-dpm"]
STEPS = 10


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


def compare_edit_app(policy: Policy) -> gr.Blocks:
    with gr.Blocks() as demo:
        compare_tab(policy, prompt="a blue star on a white background", edit=True)
    return demo


def test_an_uploaded_picture_is_edited_by_each_model_side_by_side(serve, demo_module, tmp_path):
    path = tmp_path / "circle.png"
    demo_module.edit_sample().resize((96, 64)).save(path)
    url = serve(compare_edit_app(demo_module.demo_policy()))
    client = Client(url, verbose=False)
    # models, prompt, negative prompt, steps, seed, image, strength
    job = client.submit(
        *(MODELS, "a blue star on a white background", "", STEPS, 5),
        *(handle_file(str(path)), 0.6),
        api_name="/compare_edit",
    )
    panels = job.result(timeout=300)
    client.close()
    finals, unused = panels[: len(MODELS)], panels[len(MODELS) :]
    assert all(panel is None for panel in unused)
    for model, final in zip(MODELS, finals, strict=True):
        assert final["status"] == "done", (model, final["message"])
        assert final["model"] == model
        assert final["params"]["strength"] == pytest.approx(0.6)
        assert final["total_steps"] == 6, final  # strength 0.6 of 10 steps
        with PIL.Image.open(final["images"][0]) as image:
            assert image.size == (96, 64)  # the picture's size, not the model's default


def test_only_models_that_take_an_image_are_offered(demo_module):
    policy = demo_module.demo_policy()
    with gr.Blocks():
        tab = compare_tab(policy, edit=True)
    offered = [value for _, value in tab.models.choices]
    assert offered == [entry.id for entry in image_entries(policy)]
    assert "flux-schnell" not in offered  # text-to-image only


def test_no_picture_is_refused_naming_the_fix(serve, demo_module):
    url = serve(compare_edit_app(demo_module.demo_policy()))
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="upload a picture"):
        client.predict(MODELS, "a star", "", STEPS, 5, None, 0.6, api_name="/compare_edit")
    client.close()


def test_a_policy_with_fewer_than_two_image_models_is_refused_when_built():
    policy = Policy(catalogue=[CatalogueEntry(id="x", backend="no-such-backend", model="m")])
    with gr.Blocks(), pytest.raises(ValueError, match="takes an\\s+input image"):
        compare_tab(policy, edit=True)
