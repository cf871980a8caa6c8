"""Generation info without a browser: the infotext format, download names, model names that
hide server paths, the metadata written into PNG and WebP files, previews fitted for slow
links, and the "reuse" event's data read defensively."""

from __future__ import annotations

import base64
import io
import json

import PIL.Image
import pytest
from PIL.PngImagePlugin import PngInfo

from gradio_diffusion_preview import DiffusionPreview, RunState
from gradio_diffusion_preview.component import ReuseData
from gradio_diffusion_preview.final_images import embed_metadata, read_exif_comment
from gradio_diffusion_preview.generation_info import (
    JSON_CHUNK,
    display_model_name,
    file_stem,
    infotext,
)
from gradio_diffusion_preview.preview_fit import fit_preview
from gradio_diffusion_preview.state import GenerationParams

PARAMS = GenerationParams(
    prompt="a red lighthouse, at dusk",
    negative_prompt="blurry",
    steps=20,
    guidance=7.5,
    width=512,
    height=384,
    seed=42,
    model="org/model",
    backend="diffusers",
    sampler="Euler a",
)


def test_infotext_follows_automatic1111s_format():
    lines = infotext(PARAMS, seed=43).split("\n")
    assert lines[0] == "a red lighthouse, at dusk"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2] == (
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 43, Size: 512x384, "
        "Model: org/model, Backend: diffusers"
    )


def test_an_img2img_run_records_its_denoising_strength_as_automatic1111_does():
    edit = PARAMS.model_copy(update={"strength": 0.6})
    assert infotext(edit, seed=43).split("\n")[2] == (
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 43, Size: 512x384, "
        "Model: org/model, Denoising strength: 0.6, Backend: diffusers"
    )


def test_the_strength_comes_from_an_img2img_request_only():
    from gradio_diffusion_preview import GenerationRequest
    from gradio_diffusion_preview.generation_info import params_for_request

    image = PIL.Image.new("RGB", (64, 64))
    edit = GenerationRequest(prompt="a", init_image=image, strength=0.35)
    assert params_for_request(edit, "diffusers").strength == 0.35
    assert params_for_request(GenerationRequest(prompt="a"), "diffusers").strength is None


def test_infotext_quotes_values_with_commas_and_leaves_out_missing_ones():
    params = GenerationParams(prompt="p", steps=4, sampler="DPM++ 2M, Karras")
    assert infotext(params) == 'p\nSteps: 4, Sampler: "DPM++ 2M, Karras"'


@pytest.mark.parametrize(
    ("prompt", "seed", "stem"),
    [
        ("A red lighthouse, at dusk!", 1234, "a-red-lighthouse-at-dusk-1234"),
        ("", 5, "5"),
        (None, None, "image-3"),
        ("../../etc/passwd", 1, "etc-passwd-1"),
        (
            "one two three four five six seven eight nine ten",
            None,
            "one-two-three-four-five-six-seven-eight",
        ),
    ],
)
def test_download_names_come_from_the_prompt_and_seed(prompt, seed, stem):
    assert file_stem(prompt, seed, index=2) == stem


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("org/model", "org/model"),
        ("/srv/models/secret-model", "secret-model"),
        ("~/models/mine", "mine"),
        ("C:\\models\\mine", "mine"),
        ("./relative/model", "model"),
        (None, None),
    ],
)
def test_a_local_model_path_shows_only_its_name(model, shown):
    assert display_model_name(model) == shown


def test_png_and_webp_files_carry_the_infotext():
    image = PIL.Image.new("RGB", (8, 8), "red")
    text = {"parameters": infotext(PARAMS), JSON_CHUNK: json.dumps({"seed": 42})}
    png = io.BytesIO()
    tagged = embed_metadata(image, text, "png")
    info = PngInfo()
    for key, value in tagged.info.items():
        info.add_itxt(key, value)
    tagged.save(png, format="PNG", pnginfo=info)
    with PIL.Image.open(io.BytesIO(png.getvalue())) as read:
        assert read.text["parameters"] == infotext(PARAMS)
    assert not image.info, "the backend's image is left untouched"

    webp = io.BytesIO()
    tagged = embed_metadata(image, text, "webp")
    tagged.save(webp, format="WEBP", exif=tagged.info["exif"])
    with PIL.Image.open(io.BytesIO(webp.getvalue())) as read:
        assert read_exif_comment(read) == infotext(PARAMS)


def test_final_files_written_by_the_component_carry_their_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    component = DiffusionPreview()
    state = RunState(
        status="done",
        images=[PIL.Image.new("RGB", (16, 16)), PIL.Image.new("RGB", (16, 16), "blue")],
        seeds=[42, 43],
        params=PARAMS,
    )
    data = component.postprocess(state)
    assert [file.orig_name for file in data.images] == [
        "a-red-lighthouse-at-dusk-42.png",
        "a-red-lighthouse-at-dusk-43.png",
    ]
    with PIL.Image.open(data.images[1].path) as second:
        assert "Seed: 43" in second.text["parameters"]
        assert json.loads(second.text[JSON_CHUNK])["image_index"] == 1
    assert data.infotexts == [infotext(PARAMS, 42), infotext(PARAMS, 43)]


def _data_url(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", size, "green").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_previews_are_fitted_to_the_components_size_and_quality():
    fitted = fit_preview(_data_url((400, 200)), 100, 50)
    assert fitted.startswith("data:image/jpeg;base64,")
    with PIL.Image.open(io.BytesIO(base64.b64decode(fitted.partition(",")[2]))) as image:
        assert image.size == (100, 50)
    small = _data_url((40, 20))
    assert fit_preview(small, 100, None) == small
    assert fit_preview("data:image/png;base64,not-base64!", 100, 50).endswith("not-base64!")
    assert fit_preview(None, 100, 50) is None


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [({"preview_max_side": 4}, "preview_max_side"), ({"preview_quality": 0}, "preview_quality")],
)
def test_bad_preview_settings_name_the_fix(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        DiffusionPreview(**kwargs)


def test_reuse_data_from_the_browser_is_read_defensively():
    good = ReuseData(None, {"index": 1, "seed": 43, "params": PARAMS.model_dump()})
    assert (good.value("seed"), good.value("prompt"), good.index) == (43, PARAMS.prompt, 1)
    bad = ReuseData(None, {"index": -3, "seed": "x", "params": {"steps": "many"}})
    assert bad.params == GenerationParams() and bad.seed is None and bad.index == 0
    assert ReuseData(None, "junk").value("steps") is None


@pytest.mark.parametrize(
    "asked, shown", [(None, "DDIMScheduler"), ("default", "DDIMScheduler"), ("euler_a", "euler_a")]
)
def test_the_images_name_the_sampler_that_made_them(asked, shown):
    from gradio_diffusion_preview.events import Finished
    from gradio_diffusion_preview.generation_info import params_finished
    from gradio_diffusion_preview.state import GenerationParams

    finished = Finished(images=[], seeds=[1], metadata={"scheduler": "DDIMScheduler"})
    params = params_finished(GenerationParams(prompt="p", sampler=asked), finished, 4)
    assert params.sampler == shown
