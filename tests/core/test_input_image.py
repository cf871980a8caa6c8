"""Input images on the request (image-to-image, inpainting, editing): decoded in memory from a PIL
image, a data URL or base64 text, never from a path; bounded in bytes and pixels; refused
plainly, naming the model and the fix, where the backend or model takes none."""

from __future__ import annotations

import base64
import io
import random

import PIL.Image
import pytest
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    GenerationRequest,
    InvalidRequest,
    ModelDefaults,
    ModelInfo,
    stream,
    validate_request,
)
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy
from gradio_diffusion_preview.request import DEFAULT_STRENGTH, build_request


def picture(width: int = 64, height: int = 48, colour=(200, 30, 30), mode: str = "RGB"):
    return PIL.Image.new(mode, (width, height), colour)


def encoded(image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def data_url(image, fmt: str = "PNG") -> str:
    mime = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(encoded(image, fmt)).decode()


class Editor(Backend):
    """Takes input images: 'img2img' does image-to-image, 'inpaint' also masks, 'text' (its
    own ModelDefaults) takes no input image, 'kontext' edits by instruction only (and draws from a
    prompt alone too), 'edit-only' edits by instruction and draws nothing without a picture."""

    id = "editor"
    display_name = "Editor"
    location = "local"
    capabilities = Capabilities(image_to_image=True, inpainting=True, max_size=1024)

    def models(self):
        return [
            ModelInfo("img2img", defaults=ModelDefaults(inpainting=False)),
            ModelInfo("inpaint"),
            ModelInfo("text", defaults=ModelDefaults(image_to_image=False, inpainting=False)),
            ModelInfo(
                "kontext",
                defaults=ModelDefaults(
                    image_to_image=False, inpainting=False, instruction_editing=True
                ),
            ),
            ModelInfo(
                "edit-only",
                defaults=ModelDefaults(
                    image_to_image=False,
                    inpainting=False,
                    instruction_editing=True,
                    text_to_image=False,
                ),
            ),  # fmt: skip
        ]

    def generate(self, request, control):
        yield from ()


def refusal(backend, **fields) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(build_request(backend, {"prompt": "a star", **fields}), backend)
    return caught.value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_input_image_arrives_as_a_data_url_base64_or_pil(fmt):
    image = picture(96, 64)
    for given in (data_url(image, fmt), base64.b64encode(encoded(image, fmt)).decode(), image):
        request = validate_request(
            build_request(Editor(), {"prompt": "a star", "init_image": given, "model": "img2img"}),
            Editor(),
        )
        assert request.init_image.size == (96, 64)
        assert request.strength == DEFAULT_STRENGTH
        assert (request.width, request.height) == (96, 64)  # the output has the input's size


def test_a_backend_that_declares_nothing_refuses_an_input_image_plainly():
    error = refusal(CountingBackend(), init_image=picture())
    assert error.field == "init_image"
    assert "does not take an input image" in str(error) and "Fix:" in str(error)
    assert "<PIL image 64x48>" in str(error)  # described, never its bytes


def test_a_model_that_takes_no_input_image_is_named():
    error = refusal(Editor(), init_image=picture(), model="text")
    assert "model 'text' does not take an input image" in str(error)


def test_a_mask_is_refused_by_a_model_that_does_not_inpaint_and_taken_by_one_that_does():
    error = refusal(
        Editor(), init_image=picture(), mask_image=picture(mode="L", colour=255), model="img2img"
    )
    assert error.field == "mask_image" and "does not inpaint" in str(error)
    request = validate_request(
        GenerationRequest(
            prompt="a",
            model="inpaint",
            init_image=picture(),
            mask_image=picture(mode="L", colour=255),
        ),
        Editor(),
    )
    assert request.mask_image.size == request.init_image.size


def test_a_mask_must_have_the_input_images_size():
    error = refusal(Editor(), init_image=picture(), mask_image=picture(32, 32), model="inpaint")
    assert "the mask is 32x32, the input image 64x48" in str(error)


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_strength_is_from_0_to_1(strength):
    error = refusal(Editor(), init_image=picture(), strength=strength, model="img2img")
    assert error.field == "strength" and "from 0 to 1" in str(error)


def test_strength_and_mask_need_an_input_image():
    assert refusal(Editor(), strength=0.5).field == "strength"
    assert refusal(Editor(), mask_image=picture()).field == "mask_image"


def test_an_instruction_editing_model_takes_an_image_but_no_strength():
    request = validate_request(
        GenerationRequest(prompt="make it blue", model="kontext", init_image=picture()), Editor()
    )
    assert request.strength is None
    error = refusal(Editor(), model="kontext", init_image=picture(), strength=0.5)
    assert "edits by instruction and takes no strength" in str(error)


def test_a_model_that_only_edits_refuses_a_prompt_alone_naming_the_fix():
    error = refusal(Editor(), model="edit-only")
    assert error.field == "init_image"
    assert "model 'edit-only' only edits pictures: it needs an input image" in str(error)
    assert "give init_image" in str(error)
    request = validate_request(
        GenerationRequest(prompt="make it blue", model="edit-only", init_image=picture()), Editor()
    )
    assert request.init_image is not None
    # a model that edits by instruction but may also draw from a prompt alone takes one
    assert validate_request(GenerationRequest(prompt="a star", model="kontext"), Editor())


@pytest.mark.parametrize(
    "value, says",
    [
        ("/etc/passwd", "paths and URLs are not opened"),
        ("~/secret.png", "paths and URLs are not opened"),
        ("https://example.com/a.png", "paths and URLs are not opened"),
        ("file:///etc/hosts", "paths and URLs are not opened"),
        ("picture.png", "paths and URLs are not opened"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"not a picture at all").decode(), "read"),
        (data_url(picture(), "GIF"), "only PNG, JPEG, WEBP are taken"),
        (data_url(picture(), "BMP"), "only PNG, JPEG, WEBP are taken"),
        (12, "must be an image"),
    ],
)
def test_an_input_that_is_not_a_picture_is_refused_naming_the_fix(value, says):
    error = refusal(Editor(), init_image=value, model="img2img")
    assert error.field == "init_image" and says in str(error) and "Fix:" in str(error)


def test_a_path_is_never_opened(tmp_path):
    real = tmp_path / "real.png"
    picture().save(real)
    error = refusal(Editor(), init_image=str(real), model="img2img")
    assert "paths and URLs are not opened" in str(error)
    error = refusal(Editor(), init_image=real, model="img2img")  # a Path object too
    assert "must be an image" in str(error)


def test_a_huge_picture_is_refused_from_its_header_before_its_pixels_are_decoded():
    # 3000x3000 of one colour compresses to a few KB: the pixel count is what refuses it
    big = data_url(picture(3000, 3000))
    policy = Policy(
        catalogue=[CatalogueEntry(id="e", backend="editor", model="img2img")],
        limits=Limits(max_side=1024, max_input_pixels=512 * 512),
    )
    states = list(stream("editor", registry=registry_with(Editor()), policy=policy,
                         prompt="a", init_image=big))  # fmt: skip
    assert states[-1].status == "error" and "init_image" in states[-1].message
    assert "at most 262144 are taken" in states[-1].message


def test_a_policy_bounds_the_bytes_of_an_upload():
    noisy = PIL.Image.frombytes("RGB", (128, 128), random.Random(1).randbytes(128 * 128 * 3))
    policy = Policy(
        catalogue=[CatalogueEntry(id="e", backend="editor", model="img2img")],
        limits=Limits(max_input_bytes=1000),
    )
    states = list(stream("editor", registry=registry_with(Editor()), policy=policy,
                         prompt="a", init_image=data_url(noisy)))  # fmt: skip
    assert states[-1].status == "error"
    assert "init_image" in states[-1].message and "at most 1000 bytes in this app" in (
        states[-1].message
    )


def test_under_a_policy_the_output_size_follows_the_input_held_to_the_limits():
    policy = Policy(
        catalogue=[CatalogueEntry(id="e", backend="editor", model="img2img")],
        limits=Limits(max_side=256),
    )
    backend = Editor()
    entry = policy.entry("editor", "e")
    request = validate_request(
        policy.admit(entry, backend, {"prompt": "a", "init_image": picture(800, 400)}), backend
    )
    policy.check_limits(backend.id, request)
    assert (request.width, request.height) == (256, 128)
