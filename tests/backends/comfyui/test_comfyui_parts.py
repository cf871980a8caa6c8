"""The ComfyUI backend's parts on their own: reading socket frames, pairing steps with previews,
building graphs, reading a user's workflow and the endpoint's options."""

from __future__ import annotations

import io
import json
import struct
import time

import PIL.Image
import pytest

from gradio_diffusion_preview.backends.comfyui.backend import ComfyUIBackend
from gradio_diffusion_preview.backends.comfyui.client import refused_prompt
from gradio_diffusion_preview.backends.comfyui.connection import socket_url
from gradio_diffusion_preview.backends.comfyui.messages import (
    Ignored,
    Message,
    PreviewFrame,
    Unreadable,
    parse_frame,
)
from gradio_diffusion_preview.backends.comfyui.settings import Settings, SettingsError
from gradio_diffusion_preview.backends.comfyui.steps import StepTracker
from gradio_diffusion_preview.backends.comfyui.workflow import UserWorkflow, builtin_plan
from gradio_diffusion_preview.backends.relayed_previews import fit
from gradio_diffusion_preview.endpoints import Endpoint
from gradio_diffusion_preview.request import GenerationRequest


def jpeg(size=(16, 16), color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


# -- frames ----------------------------------------------------------------------------------


def test_a_preview_frame_is_event_type_then_image_type_then_the_image():
    frame = parse_frame(struct.pack(">II", 1, 1) + jpeg((24, 16)))
    assert isinstance(frame, PreviewFrame) and frame.prompt_id is None
    assert frame.image().size == (24, 16)
    png = io.BytesIO()
    PIL.Image.new("RGB", (8, 8)).save(png, format="PNG")
    assert parse_frame(struct.pack(">II", 1, 2) + png.getvalue()).image().size == (8, 8)


def test_a_preview_with_metadata_names_its_prompt_and_node():
    meta = json.dumps({"node_id": "5", "prompt_id": "p1", "image_type": "image/jpeg"}).encode()
    frame = parse_frame(struct.pack(">II", 4, len(meta)) + meta + jpeg())
    assert (frame.prompt_id, frame.node_id) == ("p1", "5") and frame.image() is not None


def test_json_messages_are_type_and_data():
    message = parse_frame('{"type": "executing", "data": {"node": null, "prompt_id": "p"}}')
    assert message == Message("executing", {"node": None, "prompt_id": "p"})
    assert message.prompt_id == "p"
    assert parse_frame('{"type": "status"}') == Message("status", {})


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"data": {}}',
        '{"type": "progress", "data": 3}',
        b"",
        b"\x00\x00\x01",
        struct.pack(">I", 1) + b"\x00",
        struct.pack(">II", 1, 7) + b"x",
        struct.pack(">II", 4, 10**6) + b"{}",
        struct.pack(">II", 4, 3) + b"abc",
        struct.pack(">II", 4, 2) + b"[]",
    ],
)
def test_garbage_frames_are_unreadable_not_errors(frame):
    assert isinstance(parse_frame(frame), Unreadable)


def test_other_binary_events_are_ignored_and_bad_image_bytes_decode_to_none():
    assert isinstance(parse_frame(struct.pack(">I", 3) + b"node text"), Ignored)
    assert parse_frame(struct.pack(">II", 1, 1) + b"not a jpeg").image() is None


def test_the_socket_address_follows_the_endpoints_scheme_and_path():
    assert socket_url("http://127.0.0.1:8188", "a b") == "ws://127.0.0.1:8188/ws?clientId=a%20b"
    assert socket_url("https://box.example/comfy", "id") == "wss://box.example/comfy/ws?clientId=id"


# -- steps and previews ----------------------------------------------------------------------


def test_a_plain_frame_joins_the_step_whose_progress_came_before_it():
    tracker = StepTracker(4, ["5"], (32, 32))
    assert tracker.progress("5", 1, 4) == []  # waits for its frame
    [step] = tracker.preview(PreviewFrame(jpeg()))
    assert (step.step, step.preview.size) == (1, (32, 32))  # resized to the announced size


def test_a_step_without_a_frame_goes_after_its_grace_and_later_ones_do_not_wait():
    tracker = StepTracker(3, ["5"], (16, 16), grace=0.05)
    tracker.progress("5", 1, 3)
    assert tracker.expired() == []
    time.sleep(0.06)
    [step] = tracker.expired()
    assert step.step == 1 and step.preview is None
    [second] = tracker.progress("5", 2, 3)
    assert second.step == 2 and second.preview is None


def test_a_frame_with_metadata_waits_for_its_progress():
    tracker = StepTracker(2, ["5"], (16, 16))
    assert tracker.preview(PreviewFrame(jpeg(), "p", "5")) == []
    [step] = tracker.progress("5", 1, 2)
    assert step.preview is not None
    assert tracker.preview(PreviewFrame(jpeg(), "p", "99")) == []  # not a sampler of ours


def test_batch_samplers_share_the_steps_which_only_go_up():
    tracker = StepTracker(4, ["5", "8"], None)
    numbers = [s.step for v in (1, 2, 3, 4) for s in tracker.progress("5", v, 4)]
    numbers += [s.step for v in (1, 2, 3, 4) for s in tracker.progress("8", v, 4)]
    assert numbers == [1, 2, 3, 4]
    assert tracker.progress("5", 4, 4) == [] and tracker.progress("3", 1, 1) == []


def test_previews_keep_the_aspect_ratio_within_the_longest_side():
    assert fit(1024, 768, 512) == (512, 384)
    assert fit(64, 64, 512) == (64, 64)


# -- graphs ----------------------------------------------------------------------------------


def request(**fields) -> GenerationRequest:
    base = {"prompt": "a fox", "model": "m.safetensors", "steps": 5, "guidance": 6.0}
    return GenerationRequest(**{**base, "seed": 10, "width": 64, "height": 96, **fields})


def test_the_builtin_graph_has_one_sampler_branch_per_image():
    plan = builtin_plan(request(num_images=2, seed=2**32 - 1), "euler", "karras", "gdp")
    graph = plan.graph
    assert graph["1"] == {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "m.safetensors"},
    }
    assert graph["4"]["inputs"] == {"width": 64, "height": 96, "batch_size": 1}
    assert plan.seeds == (2**32 - 1, 0) and plan.sampler_nodes == ["5", "8"]
    assert [graph[n]["inputs"]["seed"] for n in plan.sampler_nodes] == [2**32 - 1, 0]
    assert plan.output_nodes == ["7", "10"] and graph["10"]["inputs"]["images"] == ["9", 0]
    assert graph["5"]["inputs"]["cfg"] == 6.0 and graph["5"]["inputs"]["scheduler"] == "karras"


FLOW = {
    "3": {
        "class_type": "KSampler",
        "inputs": {"seed": 1, "steps": 20, "cfg": 7.0, "latent_image": ["5", 0]},
    },
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["4", 1]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
}
MARKS = {"prompt": "6.text", "steps": "3.steps", "width": "5.width", "height": "5.height"}


@pytest.mark.parametrize(
    ("flow", "marks", "says"),
    [
        ({"nodes": [], "links": []}, MARKS, "UI format"),
        ({"3": {"inputs": {}}}, MARKS, "has no class_type and inputs"),
        (FLOW, None, "has no 'inputs' marks"),
        (FLOW, {**MARKS, "colour": "3.seed"}, "unknown input 'colour'"),
        (FLOW, {"prompt": "6.text"}, "does not mark 'steps'"),
        (FLOW, {**MARKS, "seed": "3"}, 'write it as "node_id.input_name"'),
        (FLOW, {**MARKS, "seed": "9.seed"}, "names node '9', which the workflow"),
        (FLOW, {**MARKS, "seed": "3.noise"}, "does not have. Fix: use one of: seed, steps"),
        (FLOW, {**MARKS, "prompt": "6.clip"}, "linked to node '4'"),
        (FLOW, {**MARKS, "cfg": "6.text"}, "holds 'x', not a float"),
    ],
)
def test_a_wrong_workflow_or_mark_is_a_clear_error(flow, marks, says):
    with pytest.raises(ValueError, match="Fix:") as error:
        UserWorkflow.from_graph("flow", flow, marks)
    assert says in str(error.value)


def test_a_users_workflow_gets_the_request_at_its_marks_only():
    workflow = UserWorkflow.from_graph("flow", FLOW, {**MARKS, "seed": "3.seed"})
    plan = workflow.plan(request(), None, None)
    assert plan.graph["6"]["inputs"]["text"] == "a fox" and plan.graph["3"]["inputs"]["seed"] == 10
    assert plan.graph["3"]["inputs"]["cfg"] == 7.0  # not marked: the file's value
    assert plan.loader_nodes == {"4"} and ("4", "ckpt_name") in plan.model_inputs
    assert FLOW["6"]["inputs"]["text"] == "x"


# -- the endpoint's options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"colour": 1}, "unknown option 'colour'"),
        ({"preview_method": "fast"}, "preview_method is 'fast'"),
        ({"preview_max_side": 4}, "preview_max_side is 4"),
        ({"sampler": ""}, "'sampler' must be a name"),
        ({"inputs": MARKS}, "but no 'workflow'"),
        ({"workflow": "/no/such/flow.json"}, "cannot be read"),
        ({"model_defaults": {"a": {"default_steps": "many"}}}, "default_steps"),
    ],
)
def test_a_wrong_option_is_a_clear_error(options, says):
    with pytest.raises(SettingsError) as error:
        Settings.from_options("studio", options)
    assert says in str(error.value)


def test_a_wrong_option_makes_the_backend_not_configured_and_the_server_keeps_serving():
    backend = ComfyUIBackend(
        Endpoint(id="studio", kind="comfyui", url="http://127.0.0.1:1", options={"x": 1})
    )
    availability = backend.availability()
    assert availability.state == "not_configured" and "unknown option 'x'" in availability.message
    assert backend.models() == []


def test_comfyuis_validation_errors_name_the_node_and_the_problem():
    body = {
        "error": {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": "",
        },
        "node_errors": {
            "5": {
                "class_type": "KSampler",
                "dependent_outputs": ["7"],
                "errors": [
                    {
                        "type": "value_bigger_than_max",
                        "message": "Value 200 bigger than max of 100",
                        "details": "cfg",
                        "extra_info": {"input_name": "cfg"},
                    }
                ],
            }
        },
    }
    error = refused_prompt("studio", body, set())
    assert error.reason == "invalid_request"
    assert "KSampler 5: Value 200 bigger than max of 100: cfg" in str(error)
    assert refused_prompt("studio", "garbage", set()).reason == "invalid_request"
