"""The AUTOMATIC1111 API's JSON, both ways, without a server."""

from __future__ import annotations

import base64
import io
import json

import PIL.Image
import pytest

from gradio_diffusion_preview import GenerationRequest
from gradio_diffusion_preview.backends.a1111.protocol import (
    PREVIEW_OVERRIDES,
    ProtocolError,
    RunSettings,
    checkpoint_stem,
    decode_image,
    edit_steps,
    error_text,
    img2img_payload,
    parse_progress,
    parse_txt2img,
    steps_done,
    txt2img_payload,
)


def png(colour: tuple[int, int, int], size=(8, 8)) -> str:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", size, colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_img2img_payload_carries_the_input_strength_and_mask_over_txt2img_fields():
    picture = PIL.Image.new("RGBA", (16, 24), (200, 10, 10, 0))  # alpha dropped: RGB sent
    mask = PIL.Image.new("1", (16, 24), 1)
    request = GenerationRequest(
        prompt="a fox", steps=10, seed=1, width=16, height=24, init_image=picture, strength=0.3
    )
    settings = RunSettings("task(abc)")
    payload = img2img_payload(request, settings)
    assert {k: v for k, v in payload.items() if k in txt2img_payload(request, settings)} == (
        txt2img_payload(request, settings)
    )
    assert (payload["denoising_strength"], payload["resize_mode"]) == (0.3, 0)
    assert payload["include_init_images"] is False and "mask" not in payload
    [sent] = payload["init_images"]
    decoded = PIL.Image.open(io.BytesIO(base64.b64decode(sent, validate=True)))
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "RGB", (16, 24))
    assert decoded.getpixel((0, 0)) == (200, 10, 10)

    masked = img2img_payload(request.model_copy(update={"mask_image": mask}), settings)
    sent_mask = PIL.Image.open(io.BytesIO(base64.b64decode(masked["mask"], validate=True)))
    assert (sent_mask.mode, sent_mask.size, sent_mask.getpixel((3, 3))) == ("L", (16, 24), 255)
    assert (masked["mask_blur"], masked["inpainting_fill"]) == (4, 1)  # A1111's blur; "original"
    assert (masked["inpaint_full_res"], masked["inpainting_mask_invert"]) == (False, 0)


@pytest.mark.parametrize(
    ("steps", "strength", "expected"),
    [(20, 0.75, 16), (20, 0.5, 11), (12, 0.5, 7), (10, 1.0, 10), (10, 0.0, 1), (3, 0.3, 1)],
)
def test_edit_steps_are_the_samplers_t_enc_plus_one(steps, strength, expected):
    # setup_img2img_steps: t_enc = int(min(strength, 0.999) * steps); the sampler runs t_enc + 1
    assert edit_steps(steps, strength) == expected


def test_the_payload_asks_for_one_batch_with_our_task_id_checkpoint_and_previews():
    request = GenerationRequest(
        prompt="a fox",
        negative_prompt="blurry",
        model="m",
        steps=12,
        guidance=5.5,
        seed=42,
        width=512,
        height=768,
        num_images=3,
    )
    saved = frozenset(PREVIEW_OVERRIDES) | {"sd_model_checkpoint"}
    settings = RunSettings(
        "task(abc)", checkpoint="m.safetensors [1234]", sampler="Euler a", saved_options=saved
    )
    payload = txt2img_payload(request, settings)
    assert payload["force_task_id"] == "task(abc)"
    assert (payload["batch_size"], payload["n_iter"], payload["steps"]) == (3, 1, 12)
    assert (payload["seed"], payload["cfg_scale"], payload["sampler_name"]) == (42, 5.5, "Euler a")
    assert payload["override_settings"] == {
        "sd_model_checkpoint": "m.safetensors [1234]",
        "live_previews_enable": True,
        "show_progress_every_n_steps": 0,  # 1 would skip step 1's preview, see txt2img_payload
        "live_previews_image_format": "jpeg",
        "show_progress_grid": False,
    }
    assert payload["override_settings_restore_afterwards"] is True
    assert payload["save_images"] is False and "scheduler" not in payload
    quiet = txt2img_payload(request, RunSettings(task_id="t", previews=False))
    assert quiet["override_settings"] == {}


def test_only_settings_the_server_saved_are_overridden_since_only_those_are_restored():
    request = GenerationRequest(prompt="a fox", model="m", steps=12, seed=1)
    fresh = RunSettings("t", checkpoint="m [1]", saved_options=frozenset({"sd_model_checkpoint"}))
    assert txt2img_payload(request, fresh)["override_settings"] == {"sd_model_checkpoint": "m [1]"}
    some = RunSettings(
        "t", preview_every_n_steps=4, saved_options=frozenset({"show_progress_every_n_steps"})
    )
    assert txt2img_payload(request, some)["override_settings"] == {"show_progress_every_n_steps": 4}


@pytest.mark.parametrize(
    ("progress", "done"),
    [(None, 0), (0.0, 0), (1 / 20, 2), (9 / 20, 10), (19 / 20, 20), (1.0, 20), (1.3, 20)],
)
def test_the_progress_fraction_maps_onto_steps_done(progress, done):
    """sampling_step is the 0-based index of the step just finished."""
    assert steps_done(progress, 20) == done


def test_a_preview_while_the_progress_is_still_zero_is_step_one():
    """The server's progress is 0 both before and after step 1; a live preview at 0 (a latent
    stored, so step 1 is done) tells them apart. It never moves a later count."""
    assert [steps_done(p, 20, preview=True) for p in (None, 0.0, 1 / 20)] == [1, 1, 2]


def test_a_queued_answer_gives_the_place_in_the_queue():
    report = parse_progress(
        {
            "active": False,
            "queued": True,
            "completed": False,
            "textinfo": "In queue: 2/5",
            "id_live_preview": -1,
        }
    )
    assert report.queue_place == (2, 5) and not report.active
    assert parse_progress({"active": False, "textinfo": "Waiting..."}).queue_place == (None, None)


@pytest.mark.parametrize("answer", [None, [], {"progress": 0.5}, {"active": "yes"}])
def test_a_progress_answer_without_active_is_a_protocol_error(answer):
    with pytest.raises(ProtocolError):
        parse_progress(answer)


def test_the_grid_a_batch_comes_back_with_is_left_out_and_seeds_come_from_info():
    info = {"index_of_first_image": 1, "all_seeds": [7, 8], "sd_model_name": "v1-5"}
    answer = {
        "images": [png((0, 0, 0), (16, 8)), png((255, 0, 0)), png((0, 255, 0))],
        "parameters": {},
        "info": json.dumps(info),
    }
    result = parse_txt2img(answer, 2)
    assert [image.getpixel((0, 0)) for image in result.images] == [(255, 0, 0), (0, 255, 0)]
    assert result.seeds == [7, 8] and result.model_name == "v1-5"
    broken_info = parse_txt2img({**answer, "info": "not json"}, 1)
    assert broken_info.seeds is None and len(broken_info.images) == 1


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("<html>", "without 'images'"),
        ({"images": [3]}, "not base64 strings"),
        ({"images": ["!!!"]}, "not base64"),
        ({"images": [base64.b64encode(b"not an image").decode()]}, "not an image"),
    ],
)
def test_a_broken_answer_is_a_protocol_error_saying_what_is_wrong(answer, says):
    with pytest.raises(ProtocolError, match=says):
        parse_txt2img(answer, 1)


def test_previews_come_as_data_urls_and_images_as_bare_base64():
    data_url = "data:image/jpeg;base64," + png((1, 2, 3))
    assert decode_image(data_url, "a preview").getpixel((0, 0)) == (1, 2, 3)
    assert decode_image(png((4, 5, 6)), "image 1").getpixel((0, 0)) == (4, 5, 6)


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (
            {"error": "RuntimeError", "detail": "", "body": "", "errors": "model 'x' not found"},
            "RuntimeError: model 'x' not found",
        ),
        (
            {
                "error": "HTTPException",
                "detail": "Sampler not found",
                "body": "",
                "errors": "400: Sampler not found",
            },
            "Sampler not found",
        ),
        (
            {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer"}]},
            "steps: value is not a valid integer",
        ),
        ({"detail": "Not Found"}, "Not Found"),
        ("text", None),
    ],
)
def test_error_answers_give_their_message(answer, text):
    assert error_text(answer) == text


def test_checkpoint_stems_from_posix_and_windows_paths():
    assert checkpoint_stem("/srv/models/sd/v1-5.safetensors") == "v1-5"
    assert checkpoint_stem(r"C:\webui\models\Stable-diffusion\anime\cf-v3.ckpt") == "cf-v3"
    assert checkpoint_stem(None) is None
