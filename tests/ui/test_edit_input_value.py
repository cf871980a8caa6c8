"""An edit's input picture in the component's value (issue 27): served as a file of the app's own
from the run's first state (before any step preview) to its last, written once per run, and
absent from text-to-image runs; through ``gradio_client`` the value carries it too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from testenv import load_demo_module

from gradio_diffusion_preview import DiffusionPreview
from gradio_diffusion_preview.run_state import RunState

STEPS = 10


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


@pytest.fixture(scope="module")
def picture(tmp_path_factory, demo_module):
    """The demo's sample (a red circle on white) at 96x64: the result keeps that size."""
    path = tmp_path_factory.mktemp("edit-input") / "circle.png"
    demo_module.edit_sample().resize((96, 64)).save(path)
    return path


def test_the_input_is_written_once_per_run_and_kept_to_the_last_state(tmp_path):
    preview = DiffusionPreview()
    picture = PIL.Image.new("RGB", (32, 24), (200, 30, 40))
    started = RunState(run_id="r", status="running", input_image=picture)
    stepped = started.model_copy(update={"step": 1, "preview": "data:image/jpeg;base64,AA=="})
    done = stepped.model_copy(
        update={"status": "done", "images": [PIL.Image.new("RGB", (32, 24), (0, 0, 255))]}
    )
    wires = [preview.postprocess(state) for state in (started, stepped, done)]
    files = [wire.input_image for wire in wires]
    assert all(file is not None for file in files)
    assert len({file.path for file in files}) == 1  # one file, not one per state
    path = Path(files[0].path)
    assert path.is_relative_to(Path(preview.GRADIO_CACHE).resolve())  # the app's own cache
    with PIL.Image.open(path) as image:
        assert image.size == (32, 24)
        assert image.getpixel((3, 3)) == (200, 30, 40)
    # a removed file (image retention) is written again, not sent as a dead link
    path.unlink()
    again = preview.postprocess(done).input_image
    assert Path(again.path).is_file()


def test_a_text_to_image_state_carries_no_input():
    wire = DiffusionPreview().postprocess(RunState(run_id="t", status="running", step=1))
    assert wire.input_image is None


def test_the_edit_endpoint_sends_the_input_first_and_keeps_it(serve, demo_module, picture):
    url = serve(demo_module.build_demo())
    client = Client(url, verbose=False)
    args = ("diffusers", "shapes", "a blue star on a white background", "", STEPS, 7.5, 5, 1, "")
    job = client.submit(*args, handle_file(str(picture)), 0.6, api_name="/edit")
    final = job.result(timeout=300)
    assert final["status"] == "done", final["message"]
    states = [out for out in job.outputs() if out["status"] in ("running", "done")]
    first = states[0]
    # the first state of the run: the input, before any step preview
    assert first["step"] == 0 and first["preview"] is None and first["input_image"]
    assert all(state["input_image"] for state in states)
    with PIL.Image.open(final["input_image"]) as shown, PIL.Image.open(picture) as sent:
        assert shown.size == sent.size == (96, 64)  # at the result's size
        difference = np.abs(np.asarray(shown.convert("RGB"), float) - np.asarray(sent, float))
        assert difference.mean() < 2  # the picture sent (PNG: lossless)
    with PIL.Image.open(final["images"][0]) as result:
        assert result.size == (96, 64)


def test_a_generate_run_through_the_api_carries_no_input(serve, demo_module):
    url = serve(demo_module.build_demo())
    client = Client(url, verbose=False)
    final = client.predict(
        "diffusers", "shapes", "a red circle", "", 4, 7.5, 3, 64, 64, 1, "", api_name="/generate"
    )
    assert final["status"] == "done", final["message"]
    assert final["input_image"] is None
