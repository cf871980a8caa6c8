"""The remote Gradio backend against real edit apps shaped like popular editing Spaces
(tests/support/remote_edit_apps.py), served by Gradio 6 and by Gradio 5: the picture input is
found like the prompt and sent as a file (``gradio_client.handle_file``); an app with a strength
is image-to-image, one without edits by instruction; the result has the input's size; the
kit's image-to-image checks pass."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
from remote_gradio_client import gradio_backend
from remote_space_server import SpaceServer

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.testing import check_image_to_image, check_image_to_image_preview

# One worker runs the modules served by the Space-shaped apps: each worker that ran one started
# its own Gradio 6 and Gradio 5 servers (conftest.py's session fixture).
pytestmark = pytest.mark.xdist_group("space-apps")


def picture(size=(96, 64)) -> PIL.Image.Image:
    """Red over blue."""
    image = PIL.Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, size[1] // 2, size[0], size[1]))
    return image


def pixel(image, x: int, y: int) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)[y, x]


def near(a, b, within: int = 12) -> bool:
    """Equal up to lossy compression (Gradio sends gr.Image values as WebP)."""
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= within))


@pytest.mark.parametrize("api_name", ["/kontext", "/qwen_edit"])
def test_an_instruction_edit_space_gets_the_picture_and_returns_the_edit(
    space_apps: SpaceServer, api_name
):
    backend = gradio_backend(space_apps.url, api_name=api_name)
    caps = backend.capabilities_for(None)
    assert caps.instruction_editing and not caps.image_to_image
    tag = space_apps.tag()
    states = list(stream(backend, prompt=f"{tag} make it blue", init_image=picture(), seed=5))
    last = states[-1]
    assert last.status == "done", (last.reason, last.message)
    [image] = last.images
    assert image.size == (96, 64)  # the input's, though Kontext's Space made it twice as big
    assert near(pixel(image, 10, 5), (30, 30, 200)), "red and blue swapped: the edit of the input"
    assert near(pixel(image, 10, 60), (200, 30, 30))
    assert space_apps.lines(tag)[0] == "edit size=96x64 strength=None"


def test_an_img2img_space_gets_the_strength_and_streams_its_steps(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/img2img")
    caps = backend.capabilities_for(None)
    assert caps.image_to_image and not caps.instruction_editing
    tag = space_apps.tag()
    states = list(
        stream(backend, prompt=f"{tag} a green field", init_image=picture(), strength=0.5, steps=4)
    )
    last = states[-1]
    assert last.status == "done", (last.reason, last.message)
    assert last.images[0].size == (96, 64)
    assert space_apps.lines(tag)[0] == "edit size=96x64 strength=0.5"
    steps = [s.step for s in states if s.status == "running" and s.preview is not None]
    assert steps and steps == sorted(steps), steps
    # halfway to green: red 200 -> 100, green 30 -> 115
    assert near(pixel(last.images[0], 10, 5), (100, 115, 15))


def test_a_text_to_image_space_refuses_a_picture_before_the_run(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/seeded")
    last = list(stream(backend, prompt="a fox", init_image=picture()))[-1]
    assert last.status == "error" and last.reason == "invalid_request", last
    assert "init_image" in last.message


def test_the_kits_image_to_image_checks_pass(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/img2img")
    assert check_image_to_image(backend, prompt=f"{space_apps.tag()} a field") is None
    assert check_image_to_image_preview(backend, prompt=f"{space_apps.tag()} a field") is None
