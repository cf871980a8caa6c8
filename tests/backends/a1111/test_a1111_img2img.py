"""Image-to-image and inpainting against the loopback AUTOMATIC1111: a request with an input
image goes to /sdapi/v1/img2img with the input, the strength and the mask, and keeps
txt2img's live previews, Stop and finish early."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
from fake_a1111 import FakeA1111, make_backend, make_request, record, render

from gradio_diffusion_preview import Failed, Finished, InvalidRequest, Started, Step
from gradio_diffusion_preview.request import DEFAULT_STRENGTH

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    server = FakeA1111(step_time=0.04)
    server.start()
    yield server
    server.stop()


def split_picture(size: tuple[int, int]) -> PIL.Image.Image:
    """Red over blue: a picture whose halves are told apart in any preview."""
    image = PIL.Image.new("RGB", size, (40, 60, 210))
    image.paste((210, 40, 40), (0, 0, size[0], size[1] // 2))
    return image


def left_half_mask(size: tuple[int, int]) -> PIL.Image.Image:
    mask = PIL.Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    return mask


def edit_spec(request, total: int) -> dict:
    """What the fake draws for ``request``: the prompt's picture over the input, noised."""
    size = (request.width, request.height)
    mask = request.mask_image
    return {
        "prompt": request.prompt,
        "seeds": [request.seed],
        "width": request.width,
        "height": request.height,
        "steps": total,
        "checkpoint": "v1-5-pruned-emaonly",
        "strength": request.strength,
        "init": np.asarray(request.init_image.convert("RGB").resize(size), np.float32),
        "mask": None if mask is None else np.asarray(mask.convert("L").resize(size)) >= 128,
    }


def difference(a, b, blocks: int | None = None) -> float:
    if blocks:
        a, b = (image.resize((blocks, blocks), PIL.Image.Resampling.BOX) for image in (a, b))
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


def test_an_edit_goes_to_img2img_with_a_preview_of_every_step_over_the_input(fake):
    fake.lockstep_polls = 2  # every step is seen by at least one whole poll
    backend = make_backend(fake.url)
    picture = split_picture((64, 80))
    request = make_request(
        backend, init_image=picture, strength=0.5, steps=12, width=None, height=None
    )
    assert (request.width, request.height) == (64, 80)  # validation: the input's size

    run = record(backend, request)

    # The server runs int(0.5 * 12) + 1 = 7 steps (setup_img2img_steps); we announce those.
    started = run.events[0]
    assert isinstance(started, Started) and started.total_steps == 7
    steps = run.of(Step)
    assert [s.step for s in steps] == list(range(1, 8))
    assert all(s.preview is not None for s in steps)
    spec = edit_spec(request, 7)
    for step in steps:  # each preview is the edit at that step, drawn over our input
        assert difference(step.preview, render(spec, 0, step.step / 7), blocks=8) < 4
    # At strength 0.5 even the first preview is nearer the input than its mirror image.
    mirror = picture.transpose(PIL.Image.Transpose.FLIP_TOP_BOTTOM)
    assert difference(steps[0].preview, picture, 8) < difference(steps[0].preview, mirror, 8)
    finished = run.last
    assert isinstance(finished, Finished) and not finished.early
    assert finished.images[0].size == (64, 80)
    assert difference(finished.images[0], render(spec, 0, 1.0)) == 0
    [job] = fake.jobs
    assert (job.kind, job.strength, job.init_size, job.size) == ("img2img", 0.5, (64, 80), (64, 80))
    assert job.mask_size is None and job.sampling_steps == 7
    assert ("POST", "/sdapi/v1/img2img") in fake.requests
    assert ("POST", "/sdapi/v1/txt2img") not in fake.requests


def test_the_default_strength_is_sent_when_the_request_gives_none(fake):
    backend = make_backend(fake.url)
    request = make_request(backend, init_image=split_picture((64, 64)), steps=4)
    run = record(backend, request)
    assert isinstance(run.last, Finished)
    [job] = fake.jobs
    assert job.strength == DEFAULT_STRENGTH == request.strength
    assert run.events[0].total_steps == int(4 * DEFAULT_STRENGTH) + 1


def test_an_input_of_another_size_than_asked_is_resized_by_the_server(fake):
    backend = make_backend(fake.url)
    request = make_request(backend, init_image=split_picture((96, 72)), width=64, height=64)
    run = record(backend, request)
    [job] = fake.jobs
    assert job.init_size == (96, 72) and job.size == (64, 64)
    assert run.last.images[0].size == (64, 64)


def test_a_mask_is_sent_and_only_its_white_part_is_remade(fake):
    backend = make_backend(fake.url)
    picture = split_picture((64, 64))
    request = make_request(
        backend, init_image=picture, mask_image=left_half_mask((64, 64)), strength=0.9, steps=6
    )
    run = record(backend, request)
    finished = run.last
    assert isinstance(finished, Finished)
    [job] = fake.jobs
    assert job.mask_size == (64, 64)
    image = np.asarray(finished.images[0], np.float32)
    original = np.asarray(picture, np.float32)
    assert np.array_equal(image[:, 32:], original[:, 32:])  # kept outside the mask
    assert np.abs(image[:, :32] - original[:, :32]).mean() > 20  # remade inside it


def test_a_mask_of_another_size_than_the_input_is_refused_before_any_call(fake):
    backend = make_backend(fake.url)
    with pytest.raises(InvalidRequest, match=r"mask_image.*32x32.*64x64.*size of the input"):
        make_request(
            backend, init_image=split_picture((64, 64)), mask_image=left_half_mask((32, 32))
        )
    # Validation may list the checkpoints; nothing was sent to generate.
    assert not fake.jobs and all("2img" not in path for _, path in fake.requests)


def test_a_cancel_stops_the_img2img_job_within_a_step(fake):
    fake.step_time = 0.25
    backend = make_backend(fake.url)
    request = make_request(backend, init_image=split_picture((64, 64)), strength=0.75, steps=20)
    done_at_cancel = []

    def cancel_at_step_3(event, control):
        if isinstance(event, Step) and event.step >= 3 and not control.cancelled:
            done_at_cancel.append(fake.jobs[-1].steps_done)
            control.cancel()

    run = record(backend, request, on_event=cancel_at_step_3)
    assert not run.of(Finished) and not run.of(Failed)
    fake.wait_idle()
    [job] = fake.jobs
    assert job.kind == "img2img" and job.interrupted
    assert job.steps_done <= done_at_cancel[0] + 2 < job.sampling_steps
    assert [i.current_task for i in fake.interrupts] == [job.task_id]


def test_finish_early_returns_the_edit_as_far_as_it_got(fake):
    fake.step_time = 0.1
    backend = make_backend(fake.url)
    request = make_request(backend, init_image=split_picture((64, 64)), strength=0.75, steps=40)

    def finish_at_step_4(event, control):
        if isinstance(event, Step) and event.step >= 4:
            control.finish_early()

    run = record(backend, request, on_event=finish_at_step_4)
    finished = run.last
    assert isinstance(finished, Finished) and finished.early
    [job] = fake.jobs
    assert job.interrupted and job.steps_done < 15 and job.sampling_steps == 31
    spec = edit_spec(request, 31)
    assert difference(finished.images[0], render(spec, 0, job.steps_done / 31)) == 0
    assert difference(finished.images[0], render(spec, 0, 1.0)) > 5
