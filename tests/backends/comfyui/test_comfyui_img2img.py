"""Image-to-image on the loopback ComfyUI: the input is uploaded (``/upload/image``) at the
request's size, the built-in workflow starts from it (LoadImage + VAEEncode instead of
EmptyLatentImage) with the strength as the KSampler's ``denoise``, and every step's preview
shows the edit forming over the input."""

from __future__ import annotations

import io

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


def test_a_mask_is_refused_plainly_before_anything_is_sent(fake):
    backend = fake.backend()
    picture = split_picture((64, 64))
    with pytest.raises(InvalidRequest, match=r"mask_image.*does not inpaint"):
        validate_request(
            GenerationRequest(prompt="x", init_image=picture, mask_image=picture.convert("L")),
            backend,
        )
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
