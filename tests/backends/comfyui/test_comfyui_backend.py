"""The ComfyUI backend against a loopback ComfyUI: steps and previews relayed for our prompt
only, the queue position while another client's prompt runs, Stop of our prompt only, the
output cache, batches, a user's workflow with marked inputs."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import PIL.Image
import pytest
from fake_comfyui import (
    FakeComfyUI,
    OtherClient,
    Status,
    Step,
    comfy_backend,
    eventually,
    finished,
    graph,
    run,
    statuses,
    steps,
)

from gradio_diffusion_preview import Started

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    with FakeComfyUI() as server:
        yield server


@pytest.fixture
def other(fake):
    client = OtherClient(fake.url)
    yield client
    client.close()


def our_client_id(fake: FakeComfyUI, prompt_id: str) -> str:
    return fake.recorded(prompt_id)["prompt"][3]["client_id"]


def test_every_step_comes_with_its_preview_and_the_final_image_is_fetched(fake):
    events = run(fake.backend(), steps=5, width=96, height=64)
    started = events[0]
    assert isinstance(started, Started) and started.preview_size == (96, 64)
    assert [(s.step, s.total_steps) for s in steps(events)] == [(step, 5) for step in range(1, 6)]
    assert all(isinstance(s.preview, PIL.Image.Image) for s in steps(events))
    assert {s.preview.size for s in steps(events)} == {(96, 64)}
    done = finished(events)
    assert done.seeds == [7] and [image.size for image in done.images] == [(96, 64)]
    assert done.metadata["cached"] is False and done.metadata["unreadable_frames"] == 0
    # the previews moved towards the final image, as a sampler's do
    final = np.asarray(done.images[0].resize((12, 8)), dtype=float)
    first, last = (np.asarray(s.preview.resize((12, 8)), dtype=float) for s in steps(events)[::4])
    assert np.abs(last - final).mean() < np.abs(first - final).mean()


def test_previews_are_asked_for_per_prompt_and_can_be_turned_off(fake):
    events = run(fake.backend(options={"preview_method": "none"}))
    assert events[0].preview_size is None
    assert len(steps(events)) == 4 and all(s.preview is None for s in steps(events))
    prompt_id = finished(events).metadata["prompt_id"]
    assert not any(
        kind.startswith("binary") for kind, _ in fake.sent[our_client_id(fake, prompt_id)]
    )
    assert fake.recorded(prompt_id)["prompt"][3]["preview_method"] == "none"


def test_plain_preview_frames_from_a_server_without_feature_flags(fake):
    fake.knobs.feature_flags = False  # type-1 frames after each progress message
    events = run(fake.backend())
    assert [s.step for s in steps(events)] == [1, 2, 3, 4]
    assert all(s.preview is not None for s in steps(events))


def test_only_our_prompt_is_relayed_while_another_clients_runs_first(fake, other):
    fake.knobs.step_delay = 0.02
    theirs = other.submit(graph("their castle", steps=40), preview_method="auto")
    eventually(lambda: fake.running)
    events = run(fake.backend(), steps=3)
    queued = statuses(events)[0]
    assert (queued.phase, queued.position, queued.queue_size) == ("queued", 1, 1)
    assert "1 prompt ahead" in queued.message
    assert [s.step for s in steps(events)] == [1, 2, 3]
    assert all(s.preview is not None for s in steps(events))
    ours = finished(events).metadata["prompt_id"]
    assert fake.events_of(theirs)[-1] == "execution_success"
    # each socket got its own prompt's events and previews, and only the queue status of others
    sent_to_us = fake.sent[our_client_id(fake, ours)]
    assert {prompt_id for _, prompt_id in sent_to_us} == {None, ours}
    first_of_ours = sent_to_us.index(("execution_start", ours))
    assert {kind for kind, _ in sent_to_us[:first_of_ours]} == {"status"}
    assert other.prompt_ids() == {theirs} and other.previews() == 40
    assert sum(kind.startswith("binary") for kind, _ in sent_to_us) == 3


def test_the_queue_position_counts_down(fake, other):
    fake.knobs.step_delay = 0.02
    first = other.submit(graph("one", steps=30))
    eventually(lambda: fake.running)
    second = other.submit(graph("two", steps=30))
    events = run(fake.backend(), steps=2)
    said = [(s.position, s.queue_size) for s in statuses(events) if s.phase == "queued"]
    assert said[:2] == [(2, 2), (1, 1)]
    assert [fake.outcome(first), fake.outcome(second)] == ["success", "success"]
    assert [s.step for s in steps(events)] == [1, 2]


def test_stop_interrupts_our_running_prompt_and_no_other(fake, other):
    fake.knobs.step_delay = 0.03
    backend = fake.backend()
    captured = {}

    def stop_after_two(event, control):
        if isinstance(event, Started):
            theirs = other.submit(graph("waiting behind us", steps=3))
            captured["theirs"] = theirs
        if isinstance(event, Step) and event.step == 2:
            control.cancel()

    events = run(backend, on_event=stop_after_two, steps=20)
    assert [type(e).__name__ for e in events][-1] == "Step" and steps(events)[-1].step <= 3
    ours = eventually(lambda: [pid for pid, hit in fake.interrupts if hit])[0]
    assert eventually(lambda: fake.outcome(ours)) == "error"
    assert fake.events_of(ours)[-1] == "execution_interrupted"
    assert eventually(lambda: fake.outcome(captured["theirs"])) == "success"
    assert fake.interrupts == [(ours, True)]
    finished(run(backend, seed=99))  # the next run works


def test_stop_while_queued_deletes_our_prompt_and_interrupts_nothing(fake, other):
    fake.knobs.step_delay = 0.02
    theirs = other.submit(graph("theirs", steps=40))
    eventually(lambda: fake.running)

    def stop_when_queued(event, control):
        if isinstance(event, Status) and event.phase == "queued":
            control.cancel()

    events = run(fake.backend(), on_event=stop_when_queued)
    assert isinstance(events[-1], Status) and not steps(events)
    eventually(lambda: fake.deleted)
    assert fake.interrupts == [] and not fake.queue
    assert eventually(lambda: fake.outcome(theirs)) == "success"


def test_an_identical_graph_comes_from_the_cache_and_still_finishes(fake):
    backend = fake.backend()
    first = finished(run(backend))
    events = run(backend)
    again = finished(events)
    assert steps(events) == [] and statuses(events) == []
    assert again.metadata["cached"] is True
    prompt_id = again.metadata["prompt_id"]
    cached = [
        m for m in fake.recorded(prompt_id)["status"]["messages"] if m[0] == "execution_cached"
    ]
    assert sorted(cached[0][1]["nodes"]) == sorted(fake.recorded(prompt_id)["prompt"][2])
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(again.images[0]))


def test_a_batch_is_one_branch_per_seed_so_each_image_can_be_made_again(fake):
    backend = fake.backend()
    batch = run(backend, num_images=3, seed=40)
    done = finished(batch)
    assert done.seeds == [40, 41, 42] and len(done.images) == 3
    assert [s.step for s in steps(batch)] == [1, 2, 3, 4]
    alone = finished(run(backend, seed=41))
    assert np.array_equal(np.asarray(alone.images[0]), np.asarray(done.images[1]))
    assert not np.array_equal(np.asarray(done.images[0]), np.asarray(done.images[1]))


def test_loading_is_said_while_the_checkpoint_loads(fake):
    backend = fake.backend()
    first = run(backend)
    assert [s.phase for s in statuses(first)] == ["loading"]
    assert first.index(statuses(first)[0]) < first.index(steps(first)[0])
    assert statuses(run(backend, seed=8)) == []  # ComfyUI keeps it loaded (cached)


def test_sampler_and_scheduler_are_options_checked_against_the_server(fake):
    backend = fake.backend()
    done = finished(run(backend, options={"sampler": "dpmpp_2m", "scheduler": "karras"}))
    sampler = fake.recorded(done.metadata["prompt_id"])["prompt"][2]["5"]["inputs"]
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("dpmpp_2m", "karras")
    refused = run(backend, options={"sampler": "warp_drive"})[-1]
    assert refused.reason == "invalid_request" and "euler_ancestral" in refused.message


def test_models_are_the_servers_checkpoints(fake):
    backend = fake.backend()
    assert [m.id for m in backend.list_models()] == ["sd15.safetensors", "sdxl_base.safetensors"]
    listed = comfy_backend(
        fake.url,
        models=["sdxl_base.safetensors"],
        options={"model_defaults": {"sdxl_base.safetensors": {"default_size": [1024, 1024]}}},
    )
    assert listed.capabilities_for("sdxl_base.safetensors").default_size == (1024, 1024)
    assert [m.id for m in listed.list_models()] == ["sdxl_base.safetensors"]


USER_WORKFLOW = {
    "10": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "sdxl_base.safetensors"},
    },
    "11": {"class_type": "CLIPTextEncode", "inputs": {"text": "PROMPT", "clip": ["10", 1]}},
    "12": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
    "13": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 128, "height": 96, "batch_size": 1},
    },
    "14": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["10", 0],
            "seed": 5,
            "steps": 6,
            "cfg": 4.5,
            "sampler_name": "ddim",
            "scheduler": "simple",
            "positive": ["11", 0],
            "negative": ["12", 0],
            "latent_image": ["13", 0],
            "denoise": 1.0,
        },
    },
    "15": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["10", 2]}},
    "16": {"class_type": "PreviewImage", "inputs": {"images": ["15", 0]}},
    "17": {"class_type": "SaveImage", "inputs": {"images": ["15", 0], "filename_prefix": "mine"}},
}
MARKS = {
    "prompt": "11.text",
    "seed": "14.seed",
    "steps": "14.steps",
    "width": "13.width",
    "height": "13.height",
    "checkpoint": "10.ckpt_name",
}


def test_a_users_workflow_runs_with_the_request_at_its_marked_inputs(fake, tmp_path):
    file = tmp_path / "my_flow.json"
    file.write_text(json.dumps(USER_WORKFLOW))
    backend = fake.backend(options={"workflow": str(file), "inputs": MARKS})
    caps = backend.capabilities
    assert (caps.default_steps, caps.default_size, caps.max_batch) == (6, (128, 96), 1)
    assert not caps.negative_prompt and not caps.guidance and caps.seed
    assert backend.default_model() == "sdxl_base.safetensors"  # the file's own choice
    events = run(backend, prompt="a lighthouse", steps=3, width=96, height=64, seed=9)
    done = finished(events)
    assert [s.step for s in steps(events)] == [1, 2, 3]
    assert done.images[0].size == (96, 64) and done.seeds == [9]
    sent = fake.recorded(done.metadata["prompt_id"])["prompt"][2]
    assert sent["11"]["inputs"]["text"] == "a lighthouse" and sent["14"]["inputs"]["seed"] == 9
    assert sent["12"]["inputs"]["text"] == "blurry" and sent["14"]["inputs"]["cfg"] == 4.5
    assert USER_WORKFLOW["11"]["inputs"]["text"] == "PROMPT"  # the template is left alone
    # the saved image, not the temporary preview, is the result
    saved = fake.recorded(done.metadata["prompt_id"])["outputs"]["17"]["images"][0]
    on_server = PIL.Image.open(io.BytesIO(fake.files[("output", "", saved["filename"])]))
    assert np.array_equal(np.asarray(done.images[0]), np.asarray(on_server))


def test_two_runs_at_once_on_one_backend_each_get_their_own_steps(fake):
    fake.knobs.step_delay = 0.02
    backend = fake.backend()
    results = {}

    def generate(seed):
        results[seed] = run(backend, seed=seed, steps=6)

    threads = [threading.Thread(target=generate, args=(seed,)) for seed in (101, 102)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for events in results.values():
        assert [s.step for s in steps(events)] == [1, 2, 3, 4, 5, 6]
        assert all(s.preview is not None for s in steps(events))
    assert sorted(finished(events).seeds[0] for events in results.values()) == [101, 102]
    waited = [any(s.phase == "queued" for s in statuses(events)) for events in results.values()]
    assert sorted(waited) == [False, True]  # one ran first, the other waited for it
