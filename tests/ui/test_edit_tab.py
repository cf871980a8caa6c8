"""The Edit tab (issue 27): the library's Generate tab with an input image, on the demo's bundled
model offline. An uploaded picture runs image-to-image through ``/edit`` (the result has the
input's size, its strength recorded); uploads are taken, held to the policy's bounds, and leave
the cache once its ``image_max_age`` has passed; only the catalogue's entries that take an image are
offered."""

from __future__ import annotations

import io
import time
from pathlib import Path

import gradio as gr
import httpx
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from testenv import load_demo_module

from gradio_diffusion_preview.generate_tab import generate_tab, image_entries
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.request_guard import has_upload_control
from gradio_diffusion_preview.upload_expiry import upload_expiry_of

STEPS = 10


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


@pytest.fixture(scope="module")
def picture(tmp_path_factory, demo_module):
    """The demo's sample (a red circle on white), scaled to 96x64: the result keeps that size."""
    path = tmp_path_factory.mktemp("edit") / "circle.png"
    demo_module.edit_sample().resize((96, 64)).save(path)
    return path


def edit_args(image, seed=5, strength=0.6):
    # backend, model, prompt, negative, steps, guidance, seed, images, options, image, strength
    return (
        "diffusers",
        "shapes",
        "a blue star on a white background",
        "",
        STEPS,
        7.5,
        seed,
        1,
        "",
        image,
        strength,
    )


def test_an_uploaded_picture_is_edited_through_the_edit_endpoint(serve, demo_module, picture):
    url = serve(demo_module.build_demo())
    job = Client(url, verbose=False).submit(*edit_args(handle_file(str(picture))), api_name="/edit")
    final = job.result(timeout=300)
    assert final["status"] == "done", final["message"]
    running = [out for out in job.outputs() if out["status"] == "running" and out["preview"]]
    # strength 0.6 of 10 steps: 6 steps are run, each previewed
    assert final["step"] == final["total_steps"] == 6, final
    assert running and running[-1]["step"] == 6
    assert final["params"]["strength"] == pytest.approx(0.6)
    with PIL.Image.open(final["images"][0]) as image:
        assert image.size == (96, 64)  # the input's size, not the model's default
        assert "Denoising strength: 0.6" in image.info.get("parameters", "")


def test_the_edit_tab_lists_only_models_that_take_an_image(demo_module):
    policy = demo_module.demo_policy()
    takers = image_entries(policy)
    assert takers and len(takers) < len(policy.catalogue)  # the demo also lists text-only ones
    with gr.Blocks():
        tab = generate_tab(policy, edit=True)
    offered = [value for _, value in tab.model.choices]
    assert offered == [entry.id for entry in takers]
    assert tab.image is not None and tab.strength is not None
    assert tab.strength.visible is False  # no picture yet: no strength


def test_an_edit_tab_without_a_model_that_takes_an_image_is_refused_when_built():
    policy = Policy(catalogue=[CatalogueEntry(id="x", backend="no-such-backend", model="m")])
    with gr.Blocks(), pytest.raises(ValueError, match="takes an input image"):
        generate_tab(policy, edit=True)


def test_uploads_are_taken_with_the_edit_tab_and_held_to_the_policy(serve, demo_module, picture):
    policy = demo_module.demo_policy()
    policy.max_file_size = 200_000
    policy.limits = Limits(**{**vars(policy.limits), "max_input_bytes": 2_000})
    with gr.Blocks() as app:
        generate_tab(policy, edit=True)
    with gr.Blocks() as plain:
        generate_tab(policy)
    assert has_upload_control(app) and not has_upload_control(plain)
    url = serve(app)
    with httpx.Client(base_url=url, timeout=60) as http:
        big = http.post("/gradio_api/upload", files={"files": ("b.png", b"x" * 800_000)})
        assert big.status_code == 413, big.text
    # within max_file_size, beyond max_input_bytes: the run refuses it, naming the bound
    noisy = io.BytesIO()
    PIL.Image.effect_noise((64, 64), 60).convert("RGB").save(noisy, "PNG")
    assert 2_000 < len(noisy.getvalue()) < 200_000
    path = picture.with_name("noisy.png")
    path.write_bytes(noisy.getvalue())
    job = Client(url, verbose=False).submit(*edit_args(handle_file(str(path))), api_name="/edit")
    with pytest.raises(Exception, match="at most 2000 bytes"):
        job.result(timeout=120)
    small = Client(url, verbose=False).submit(
        *edit_args(handle_file(str(picture)), strength=0.3), api_name="/edit"
    )
    assert len(picture.read_bytes()) < 2_000
    assert small.result(timeout=300)["status"] == "done"


def test_an_upload_leaves_the_cache_at_the_first_upload_after_the_policys_image_age(
    serve, demo_module
):
    with gr.Blocks() as app:
        generate_tab(demo_module.demo_policy(), edit=True)
    expiry = upload_expiry_of(app)
    assert expiry.max_age == 3600 and app.delete_cache is None  # Gradio's sweep is not used
    url = serve(app)

    def upload(name: str) -> Path:
        with httpx.Client(base_url=url, timeout=60) as http:
            answer = http.post("/gradio_api/upload", files={"files": (name, name.encode() * 100)})
        assert answer.status_code == 200, answer.text
        return Path(answer.json()[0])

    first = upload("first.png")
    second = upload("second.png")  # within the hour: both kept
    assert first.is_file() and second.is_file()
    expiry.clock = lambda: time.time() + 3600  # an hour on, as the uploads' ctimes count it
    third = upload("third.png")
    assert not first.exists() and not first.parent.exists() and not second.exists()
    assert third.is_file() and app.upload_file_set == {str(third)}


def test_an_edit_without_a_picture_says_to_upload_one(serve, demo_module):
    url = serve(demo_module.build_demo())
    job = Client(url, verbose=False).submit(*edit_args(None), api_name="/edit")
    with pytest.raises(Exception, match="upload a picture"):
        job.result(timeout=120)
