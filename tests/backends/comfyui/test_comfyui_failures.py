"""Every way a ComfyUI run can fail ends it with the right reason and a clear message, takes our
prompt off the server, and leaves the backend ready: the next run works."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from fake_comfyui import (
    FakeComfyUI,
    OtherClient,
    Step,
    comfy_backend,
    eventually,
    failed,
    finished,
    graph,
    run,
    steps,
)

from gradio_diffusion_preview import ModelListingError, Started
from gradio_diffusion_preview.request import BackendUnavailable, build_request, validate_request

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    with FakeComfyUI() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_unavailable_at_run_time_and_in_the_listing():
    url = f"http://127.0.0.1:{closed_port()}"
    backend = comfy_backend(url, models=["sd15.safetensors"], connect_timeout=2)
    assert backend.availability().usable  # no network: that is for the run to find out
    events = run(backend)
    assert len(events) == 1 and failed(events).reason == "unavailable"
    assert "Cannot reach the ComfyUI server of backend 'studio'" in events[0].message
    assert url not in events[0].message  # visitors see the backend, not the address
    listing = comfy_backend(url)
    with pytest.raises(ModelListingError, match="Cannot reach"):
        listing.list_models()
    with pytest.raises(BackendUnavailable, match="could not list its models"):
        validate_request(build_request(listing, {"prompt": "a fox"}), listing)


def test_a_missing_checkpoint_is_model_not_found_with_comfyuis_message(fake):
    backend = fake.backend(models=["gone.safetensors", "sd15.safetensors"])
    problem = failed(run(backend, model="gone.safetensors"))
    assert problem.reason == "model_not_found"
    assert "ckpt_name: 'gone.safetensors' not in ['sd15.safetensors'" in problem.message
    assert not fake.queue and not fake.history  # refused before it was queued
    finished(run(backend, model="sd15.safetensors"))


def test_a_graph_comfyui_refuses_is_an_invalid_request_with_its_message(fake, tmp_path):
    flow = graph()
    flow["8"] = {"class_type": "FancyUpscaler", "inputs": {"image": ["9", 0]}}
    file = tmp_path / "custom.json"
    file.write_text(json.dumps(flow))
    marks = {"prompt": "6.text", "steps": "3.steps", "width": "5.width", "height": "5.height"}
    backend = fake.backend(options={"workflow": str(file), "inputs": marks})
    problem = failed(run(backend, model="custom", seed=None))
    assert problem.reason == "invalid_request"
    assert "Cannot execute because node FancyUpscaler does not exist." in problem.message


@pytest.mark.parametrize(
    ("exception_type", "message", "reason", "says"),
    [
        (
            "RuntimeError",
            "mat1 and mat2 shapes cannot be multiplied (77x768 and 1024x320)",
            "remote_error",
            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (77x768 and 1024x320)",
        ),
        (
            "torch.OutOfMemoryError",
            "CUDA out of memory. Tried to allocate 20.00 GiB",
            "out_of_memory",
            "ran out of memory at node 5 (KSampler): CUDA out of memory. Tried to allocate",
        ),
    ],
)
def test_an_execution_error_ends_the_run_with_its_exception_message(
    fake, exception_type, message, reason, says
):
    fake.knobs.fail_next = (exception_type, message)
    backend = fake.backend()
    events = run(backend)
    assert isinstance(events[0], Started)
    problem = failed(events)
    assert problem.reason == reason and says in problem.message
    finished(run(backend))


def test_a_stall_past_the_deadline_is_a_timeout_and_interrupts_our_prompt(fake):
    fake.knobs.stall = True
    backend = fake.backend(timeout=1.0)
    began = time.monotonic()
    problem = failed(run(backend))
    assert problem.reason == "timeout" and "did not finish within 1 s" in problem.message
    assert time.monotonic() - began < 3
    interrupted = eventually(lambda: fake.interrupts)
    assert interrupted[0][1] is True
    assert eventually(lambda: fake.outcome(interrupted[0][0])) == "error"
    fake.knobs.stall = False
    finished(run(fake.backend()))


def test_waiting_in_the_queue_past_the_deadline_is_busy_and_leaves_the_queue(fake):
    other = OtherClient(fake.url)
    fake.knobs.step_delay = 0.05
    theirs = other.submit(graph("long", steps=40))
    eventually(lambda: fake.running)
    problem = failed(run(fake.backend(timeout=0.6)))
    assert problem.reason == "busy" and "without starting" in problem.message
    eventually(lambda: fake.deleted)
    assert fake.interrupts == [] and not fake.queue
    fake.knobs.step_delay = 0.0
    assert eventually(lambda: fake.outcome(theirs)) == "success"
    other.close()


def test_a_dropped_socket_is_reopened_with_the_same_client_id(fake):
    fake.knobs.step_delay = 0.03
    fake.knobs.drop_socket_at_step = 2
    events = run(fake.backend(), steps=8)
    done = finished(events)
    numbers = [s.step for s in steps(events)]
    assert numbers[:2] == [1, 2] and numbers[-1] == 8 and len(numbers) > 3  # steps after it
    client_id = fake.recorded(done.metadata["prompt_id"])["prompt"][3]["client_id"]
    assert [kind for kind, _ in fake.sent[client_id]].count("status") >= 2  # two sockets


def test_a_socket_dropped_as_the_prompt_ends_finishes_from_the_history(fake):
    fake.knobs.drop_socket_at_step = 4  # the last step: the end is sent to no socket
    done = finished(run(fake.backend()))
    assert done.images[0].size == (64, 64)


def test_a_socket_that_cannot_be_reopened_is_unavailable_and_stops_our_prompt(fake):
    fake.knobs.step_delay = 0.03
    fake.knobs.drop_socket_at_step = 2

    def refuse_sockets(event, control):
        if isinstance(event, Step) and event.step == 1:
            fake.knobs.refuse_sockets = True

    problem = failed(run(fake.backend(), on_event=refuse_sockets, steps=30))
    assert problem.reason == "unavailable" and "reconnecting failed" in problem.message
    ours = eventually(lambda: fake.interrupts)[0][0]
    assert eventually(lambda: fake.outcome(ours)) == "error"
    fake.knobs.refuse_sockets = False
    finished(run(fake.backend()))


def test_harmless_garbage_on_the_socket_is_ignored(fake):
    fake.knobs.garbage = True
    events = run(fake.backend())
    assert [s.step for s in steps(events)] == [1, 2, 3, 4]
    assert all(s.preview is not None for s in steps(events))
    assert finished(events).metadata["unreadable_frames"] >= 5


def test_a_final_image_that_is_not_an_image_is_a_remote_error(fake):
    fake.knobs.corrupt_view = True
    backend = fake.backend()
    problem = failed(run(backend))
    assert problem.reason == "remote_error" and "not an image" in problem.message
    fake.knobs.corrupt_view = False
    finished(run(backend, seed=8))


def test_a_403_says_what_comfyuis_origin_check_refuses(fake):
    fake.knobs.forbidden = True
    backend = fake.backend(models=["sd15.safetensors"])
    problem = failed(run(backend))
    assert problem.reason == "unauthorized"
    assert "HTTP 403" in problem.message and "Origin header" in problem.message
    assert "--enable-cors-header" in problem.message
    fake.knobs.forbidden = False
    finished(run(backend))


def test_comfyuis_origin_check_is_real_and_our_requests_pass_it(fake):
    refused = httpx.get(fake.url + "/prompt", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    finished(run(fake.backend()))


def test_a_prompt_interrupted_by_someone_else_is_a_remote_error(fake):
    fake.knobs.step_delay = 0.03

    def someone_presses_cancel_in_comfyui(event, control):
        if isinstance(event, Step) and event.step == 1:
            httpx.post(fake.url + "/interrupt", json={})

    problem = failed(run(fake.backend(), on_event=someone_presses_cancel_in_comfyui, steps=30))
    assert problem.reason == "remote_error" and "someone stopped it" in problem.message
    finished(run(fake.backend()))


def test_a_prompt_cleared_from_the_queue_by_someone_else_is_a_remote_error(fake):
    other = OtherClient(fake.url)
    fake.knobs.step_delay = 0.03
    other.submit(graph("long", steps=40))
    eventually(lambda: fake.running)

    def someone_clears_the_queue(event, control):
        if getattr(event, "phase", None) == "queued":
            httpx.post(fake.url + "/queue", json={"clear": True})

    problem = failed(run(fake.backend(), on_event=someone_clears_the_queue))
    assert problem.reason == "remote_error" and "left the queue" in problem.message
    other.close()


def test_a_server_that_is_not_comfyui_is_a_clear_error(fake):
    backend = comfy_backend(fake.url + "/not-comfy", models=["sd15.safetensors"])
    problem = failed(run(backend))
    assert problem.reason in ("remote_error", "unavailable")
    assert "ComfyUI server" in problem.message
