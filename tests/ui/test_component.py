"""DiffusionPreview's data model and postprocess: every accepted type, and the TypeError."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from gradio_diffusion_preview import DiffusionPreview, PreviewData, RunState


@pytest.fixture
def component(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    return DiffusionPreview()


def test_api_info_is_derived_from_the_data_model(component):
    info = component.api_info()
    fields = info["properties"]
    for name in (
        "status",
        "step",
        "total_steps",
        "preview",
        "eta",
        "steps_per_second",
        "images",
        "seeds",
        "backend",
        "model",
        "message",
        "run_id",
    ):
        assert name in fields, name
    assert set(fields["status"]["enum"]) == {
        "idle",
        "queued",
        "running",
        "done",
        "cancelled",
        "error",
    }


def test_data_model_round_trips_through_json():
    data = PreviewData(
        status="running",
        step=3,
        total_steps=10,
        preview="data:image/jpeg;base64,",
        seeds=[7],
        eta=1.5,
    )
    assert PreviewData.model_validate_json(data.model_dump_json()) == data


def test_data_model_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        PreviewData(status="exploded")


def test_postprocess_none_is_none(component):
    assert component.postprocess(None) is None


def test_postprocess_run_state_saves_final_images_as_files(component):
    images = [PIL.Image.new("RGB", (32, 24), (10, 20, 30)), PIL.Image.new("RGB", (32, 24))]
    state = RunState(
        status="done", step=5, total_steps=5, images=images, seeds=[1, 2], backend="b", model="m"
    )
    data = component.postprocess(state)
    assert isinstance(data, PreviewData)
    assert data.status == "done" and data.seeds == [1, 2] and data.backend == "b"
    assert len(data.images) == 2
    with PIL.Image.open(data.images[0].path) as saved:
        assert saved.size == (32, 24)
        assert saved.getpixel((0, 0)) == (10, 20, 30)  # PNG: full quality, lossless
    assert Path(data.images[0].path).is_relative_to(Path(component.GRADIO_CACHE))


def test_postprocess_running_state_writes_no_file(component):
    data = component.postprocess(
        RunState(status="running", step=1, total_steps=5, preview="data:image/jpeg;base64,AAAA")
    )
    assert data.images == [] and data.preview.startswith("data:image/jpeg")
    assert not Path(component.GRADIO_CACHE).exists() or not any(
        Path(component.GRADIO_CACHE).rglob("*.*")
    )


def test_timing_figures_reach_the_wire_in_milliseconds(component):
    state = RunState(
        status="running",
        step=2,
        total_steps=5,
        elapsed=0.20224866100033978,
        eta=0.29637750599431456,
        steps_per_second=10.122225672745722,
    )
    data = component.postprocess(state)
    assert (data.elapsed, data.eta, data.steps_per_second) == (0.202, 0.296, 10.122)
    assert len(data.model_dump_json()) < len(state.model_dump_json(exclude={"images"}))
    assert component.postprocess(RunState(status="running")).eta is None


def test_postprocess_preview_data_passes_through(component):
    data = PreviewData(status="cancelled")
    assert component.postprocess(data) is data


def test_postprocess_plain_pil_image_is_a_done_run(component):
    data = component.postprocess(PIL.Image.new("RGB", (16, 16), "red"))
    assert data.status == "done" and len(data.images) == 1


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((8, 8, 3), np.uint8),
        np.ones((8, 8, 3), np.float32) * 0.5,
        np.zeros((8, 8), np.uint8),
    ],
)
def test_postprocess_numpy_array_is_a_done_run(component, array):
    data = component.postprocess(array)
    with PIL.Image.open(data.images[0].path) as saved:
        assert saved.size == (8, 8)


def test_postprocess_path_and_list_of_images(component, tmp_path):
    path = tmp_path / "final.png"
    PIL.Image.new("RGB", (8, 8)).save(path)
    assert component.postprocess(str(path)).images[0].path == str(path)
    assert len(component.postprocess([path, PIL.Image.new("RGB", (8, 8))]).images) == 2


def test_postprocess_missing_path_names_the_file(component, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        component.postprocess(tmp_path / "nope.png")


@pytest.mark.parametrize("bad", [42, {"status": "done"}, b"bytes", [], [1, 2], object()])
def test_postprocess_other_types_raise_a_type_error_naming_accepted_types(component, bad):
    with pytest.raises(TypeError) as error:
        component.postprocess(bad)
    message = str(error.value)
    for accepted in ("RunState", "PIL image", "numpy array", "path"):
        assert accepted in message


def test_component_is_an_output_with_stop_and_finish_events():
    names = [str(event) for event in DiffusionPreview.EVENTS]
    assert {"change", "stop", "finish"} <= set(names)
    assert DiffusionPreview().interactive is None


@pytest.mark.parametrize("kind", ["pil", "numpy", "filepath"])
def test_as_an_input_it_gives_its_final_image_as_gr_image_would(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    image = PIL.Image.new("RGB", (16, 8), (200, 10, 30))
    shown = DiffusionPreview(type=kind).postprocess(image)
    received = DiffusionPreview(type=kind).preprocess(shown)
    if kind == "filepath":
        assert Path(received).is_file()
        received = PIL.Image.open(received).convert("RGB")
    pixels = np.asarray(received)
    assert pixels.shape == (8, 16, 3) and tuple(pixels[0, 0]) == (200, 10, 30)
    assert DiffusionPreview(type=kind).preprocess(PreviewData(status="running")) is None
    state = DiffusionPreview().preprocess(shown)
    assert isinstance(state, PreviewData) and state.status == "done"


def test_format_is_gr_images_name_for_final_format_and_a_bad_type_is_named():
    assert DiffusionPreview(format="webp").final_format == "webp"
    assert DiffusionPreview(final_format="webp").final_format == "webp"
    with pytest.raises(ValueError, match="type='tensor' is not one of state, pil"):
        DiffusionPreview(type="tensor")
    assert "finished" in [str(event) for event in DiffusionPreview.EVENTS]
