"""Image-to-image and inpainting on the loopback ComfyUI: the input is uploaded
(``/upload/image``) at the request's size, the built-in workflow starts from it (LoadImage +
VAEEncode instead of EmptyLatentImage) with the strength as the KSampler's ``denoise``, and every
step's preview shows the edit forming over the input; a mask is uploaded too and set on the
latent (LoadImageMask + SetLatentNoiseMask), so only its white part is remade; a user's own API
workflow takes the input at its marked LoadImage."""

from __future__ import annotations

import io
import json

import numpy as np
import PIL.Image
import pytest
from fake_a1111 import record
from fake_comfyui import FakeComfyUI

from gradio_diffusion_preview import (
    Finished,
    GenerationRequest,
    InvalidRequest,
    Step,
    validate_request,
)


@pytest.fixture
def fake():
    with FakeComfyUI() as server:
        yield server


def split_picture(size: tuple[int, int], flipped: bool = False) -> PIL.Image.Image:
    top, bottom = ((210, 40, 40), (40, 60, 210))[:: -1 if flipped else 1]
    image = PIL.Image.new("RGB", size, bottom)
    image.paste(top, (0, 0, size[0], size[1] // 2))
    return image


def difference(a, b) -> float:
    a, b = (image.convert("RGB").resize((8, 8), PIL.Image.Resampling.BOX) for image in (a, b))
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


def uploaded(fake: FakeComfyUI) -> list[PIL.Image.Image]:
    return [
        PIL.Image.open(io.BytesIO(data))
        for (kind, _, _), data in fake.files.items()
        if kind == "input"
    ]


def test_the_input_is_uploaded_and_the_edit_forms_over_it(fake):
    backend = fake.backend()
    picture = split_picture((64, 80))
    request = validate_request(
        GenerationRequest(prompt="a lighthouse", init_image=picture, strength=0.4, steps=6, seed=1),
        backend,
    )
    assert (request.width, request.height) == (64, 80)
    run = record(backend, request)

    [sent] = uploaded(fake)
    assert sent.size == (64, 80) and difference(sent, picture) == 0
    [sampled] = fake.sampled
    assert sampled == {"denoise": 0.4, "steps": 6, "size": (64, 80), "from_image": True}
    steps = run.of(Step)
    assert [s.step for s in steps] == list(range(1, 7)) and all(s.preview for s in steps)
    mirror = split_picture((64, 80), flipped=True)
    for step in steps:  # at strength 0.4 every preview is nearer the input than its mirror
        assert difference(step.preview, picture) < difference(step.preview, mirror)
    finished = run.last
    assert isinstance(finished, Finished) and finished.images[0].size == (64, 80)
    assert difference(finished.images[0], picture) < difference(finished.images[0], mirror)


def test_an_input_of_another_size_is_uploaded_at_the_requests_size(fake):
    backend = fake.backend()
    request = validate_request(
        GenerationRequest(
            prompt="a lighthouse",
            init_image=split_picture((96, 72)),
            width=64,
            height=64,
            steps=3,
            seed=1,
        ),
        backend,
    )
    run = record(backend, request)
    [sent] = uploaded(fake)
    assert sent.size == (64, 64)
    assert fake.sampled[0]["size"] == (64, 64) and run.last.images[0].size == (64, 64)


def test_a_text_to_image_run_uploads_nothing_and_denoises_fully(fake):
    backend = fake.backend()
    request = validate_request(GenerationRequest(prompt="x", steps=2, width=64, height=64), backend)
    assert isinstance(record(backend, request).last, Finished)
    assert not uploaded(fake)
    assert fake.sampled == [{"denoise": 1.0, "steps": 2, "size": (64, 64), "from_image": False}]


def half_mask(size: tuple[int, int]) -> PIL.Image.Image:
    """White (remade) on the left half, black (kept) on the right."""
    mask = PIL.Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    return mask


def halves(image: PIL.Image.Image) -> tuple[PIL.Image.Image, PIL.Image.Image]:
    """The outer quarters of the left (remade) and right (kept) halves: away from the mask's
    edge, which the latent-sized mask and the decoder blur."""
    width, height = image.size
    return image.crop((0, 0, width // 4, height)), image.crop((3 * width // 4, 0, width, height))


def test_inpainting_uploads_the_mask_and_remakes_only_its_white_part(fake):
    backend = fake.backend()
    assert backend.capabilities.inpainting
    picture = split_picture((64, 64))
    request = validate_request(
        GenerationRequest(prompt="a lighthouse", init_image=picture,
                          mask_image=half_mask((64, 64)), strength=0.9, steps=4, seed=3),
        backend,
    )  # fmt: skip
    run = record(backend, request)
    finished = run.last
    assert isinstance(finished, Finished), finished
    sent = fake.recorded(finished.metadata["prompt_id"])["prompt"][2]
    by_class = {node["class_type"]: node["inputs"] for node in sent.values()}
    mask_name = by_class["LoadImageMask"]["image"]
    assert by_class["LoadImageMask"]["channel"] == "red"
    assert by_class["SetLatentNoiseMask"]["mask"][0] in sent
    uploaded_mask = PIL.Image.open(io.BytesIO(fake.files[("input", "", mask_name)]))
    assert uploaded_mask.mode == "L" and uploaded_mask.size == (64, 64)
    assert fake.sampled == [
        {"denoise": 0.9, "steps": 4, "size": (64, 64), "from_image": True, "masked": True}
    ]
    steps = run.of(Step)
    assert [s.step for s in steps] == [1, 2, 3, 4]
    # the black half is the input at every step and in the result; the white half is remade
    for image in [*(s.preview for s in steps), finished.images[0]]:
        remade, kept = halves(image.resize((64, 64)))
        assert difference(kept, halves(picture)[1]) < 6, difference(kept, halves(picture)[1])
    remade, _ = halves(finished.images[0])
    assert difference(remade, halves(picture)[0]) > 20


def test_a_mask_of_another_size_is_uploaded_at_the_requests_size(fake):
    backend = fake.backend()
    request = validate_request(
        GenerationRequest(prompt="x", init_image=split_picture((96, 72)),
                          mask_image=half_mask((96, 72)), width=64, height=64, steps=2, seed=1),
        backend,
    )  # fmt: skip
    record(backend, request)
    masks = [
        PIL.Image.open(io.BytesIO(data))
        for (kind, _, name), data in fake.files.items()
        if kind == "input" and "_mask_" in name
    ]
    assert [mask.size for mask in masks] == [(64, 64)]
    assert set(np.unique(np.asarray(masks[0]))) == {0, 255}  # nearest: still two-valued


IMAGE_WORKFLOW = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "PROMPT", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
    "4": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "5": {"class_type": "VAEEncode", "inputs": {"pixels": ["4", 0], "vae": ["1", 2]}},
    "6": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["1", 0],
            "seed": 5,
            "steps": 8,
            "cfg": 6.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": ["5", 0],
            "denoise": 0.6,
        },
    },  # fmt: skip
    "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
    "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "mine"}},
}
"""A user's img2img workflow as ComfyUI's "Export (API)" writes it; its size comes from its
picture, so its marked width and height are the LoadImage's (a size the run asks for)."""


def image_backend(fake, tmp_path, **marks):
    file = tmp_path / "edit_flow.json"
    graph = json.loads(json.dumps(IMAGE_WORKFLOW))
    graph["9"] = {"class_type": "EmptyLatentImage",
                  "inputs": {"width": 64, "height": 64, "batch_size": 1}}  # fmt: skip
    file.write_text(json.dumps(graph))
    inputs = {"prompt": "2.text", "steps": "6.steps", "width": "9.width", "height": "9.height",
              "seed": "6.seed", **marks}  # fmt: skip
    return fake.backend(options={"workflow": str(file), "inputs": inputs})


def test_a_users_workflow_takes_the_input_at_its_marked_load_image(fake, tmp_path):
    backend = image_backend(fake, tmp_path, image="4.image", denoise="6.denoise")
    caps = backend.capabilities
    assert caps.image_to_image and not caps.instruction_editing and not caps.inpainting
    picture = split_picture((64, 64))
    request = validate_request(
        GenerationRequest(prompt="a lighthouse", init_image=picture, strength=0.3, steps=3,
                          seed=2, width=64, height=64),
        backend,
    )  # fmt: skip
    run = record(backend, request)
    finished = run.last
    assert isinstance(finished, Finished), finished
    sent = fake.recorded(finished.metadata["prompt_id"])["prompt"][2]
    name = sent["4"]["inputs"]["image"]
    assert name != "example.png" and ("input", "", name) in fake.files  # the upload's name
    assert sent["6"]["inputs"]["denoise"] == 0.3
    assert fake.sampled[0]["from_image"] and fake.sampled[0]["denoise"] == 0.3
    assert [s.step for s in run.of(Step)] == [1, 2, 3]
    mirror = split_picture((64, 64), flipped=True)
    assert difference(finished.images[0], picture) < difference(finished.images[0], mirror)
    assert IMAGE_WORKFLOW["4"]["inputs"]["image"] == "example.png"  # the template is left alone


def test_a_users_workflow_with_an_image_but_no_denoise_edits_by_the_prompt(fake, tmp_path):
    backend = image_backend(fake, tmp_path, image="4.image")
    caps = backend.capabilities
    assert caps.instruction_editing and not caps.image_to_image
    picture = split_picture((64, 64))
    with pytest.raises(InvalidRequest, match="takes no strength"):
        validate_request(GenerationRequest(prompt="x", init_image=picture, strength=0.5), backend)
    request = validate_request(
        GenerationRequest(prompt="make it red", init_image=picture, steps=2, width=64, height=64),
        backend,
    )
    finished = record(backend, request).last
    assert isinstance(finished, Finished), finished
    sent = fake.recorded(finished.metadata["prompt_id"])["prompt"][2]
    assert ("input", "", sent["4"]["inputs"]["image"]) in fake.files
    assert sent["6"]["inputs"]["denoise"] == 0.6  # the file's own


def test_a_users_workflow_takes_a_mask_at_its_marked_load_image_mask(fake, tmp_path):
    file = tmp_path / "inpaint_flow.json"
    graph = json.loads(json.dumps(IMAGE_WORKFLOW))
    graph["10"] = {"class_type": "LoadImageMask",
                   "inputs": {"image": "example_mask.png", "channel": "red"}}  # fmt: skip
    graph["11"] = {"class_type": "SetLatentNoiseMask",
                   "inputs": {"samples": ["5", 0], "mask": ["10", 0]}}  # fmt: skip
    graph["6"]["inputs"]["latent_image"] = ["11", 0]
    graph["9"] = {"class_type": "EmptyLatentImage",
                  "inputs": {"width": 64, "height": 64, "batch_size": 1}}  # fmt: skip
    file.write_text(json.dumps(graph))
    marks = {"prompt": "2.text", "steps": "6.steps", "width": "9.width", "height": "9.height",
             "image": "4.image", "mask": "10.image", "denoise": "6.denoise"}  # fmt: skip
    backend = fake.backend(options={"workflow": str(file), "inputs": marks})
    assert backend.capabilities.inpainting
    picture = split_picture((64, 64))
    request = validate_request(
        GenerationRequest(prompt="x", init_image=picture, mask_image=half_mask((64, 64)),
                          strength=0.9, steps=3, width=64, height=64),
        backend,
    )  # fmt: skip
    finished = record(backend, request).last
    assert isinstance(finished, Finished), finished
    sent = fake.recorded(finished.metadata["prompt_id"])["prompt"][2]
    assert "_mask_" in sent["10"]["inputs"]["image"] and fake.sampled[0]["masked"]
    _, kept = halves(finished.images[0])
    assert difference(kept, halves(picture)[1]) < 6


def test_a_workflow_without_an_image_mark_takes_no_input(fake, tmp_path):
    backend = image_backend(fake, tmp_path)
    caps = backend.capabilities
    assert not (caps.image_to_image or caps.instruction_editing or caps.inpainting)
    with pytest.raises(InvalidRequest, match="does not take an input image"):
        validate_request(GenerationRequest(prompt="x", init_image=split_picture((64, 64))), backend)
    assert not fake.files and not fake.sampled


def test_stop_interrupts_an_edit_as_it_does_a_text_to_image_run(fake):
    fake.knobs.step_delay = 0.03
    backend = fake.backend()
    request = validate_request(
        GenerationRequest(
            prompt="x", init_image=split_picture((64, 64)), strength=0.5, steps=20, seed=1
        ),
        backend,
    )

    def stop_after_two(event, control):
        if isinstance(event, Step) and event.step == 2:
            control.cancel()

    run = record(backend, request, on_event=stop_after_two)
    assert not run.of(Finished) and run.of(Step)[-1].step <= 3
    fake.wait_idle()
    [(prompt_id, hit)] = fake.interrupts
    assert hit and fake.outcome(prompt_id) == "error"
    assert fake.events_of(prompt_id)[-1] == "execution_interrupted"
