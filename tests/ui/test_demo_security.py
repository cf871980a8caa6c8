"""The demo as a public server, attacked through its API (gradio_client and raw HTTP): the six
findings of issue #10 and many malformed inputs, each answered with a message naming the field
and the rule, with the server serving the next request and no server path in any answer."""

from __future__ import annotations

import json
import logging
import math

import httpx
import pytest
from api_results import final_state
from gradio_client import Client
from public_app import launched
from testenv import load_demo_module

from gradio_diffusion_preview import controls

STEPS = 3
SIDE = 64

# backend, model, prompt, negative prompt, steps, guidance, seed, width, height, images, options
GOOD = {
    "backend": "diffusers",
    "model": "shapes",
    "prompt": "a red lighthouse",
    "negative_prompt": "",
    "steps": STEPS,
    "guidance": 7.5,
    "seed": 42,
    "width": SIDE,
    "height": SIDE,
    "num_images": 1,
    "options": "{}",
}


def args(**changes):
    return list({**GOOD, **changes}.values())


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


@pytest.fixture(scope="module")
def policy(demo_module):
    return demo_module.demo_policy()


@pytest.fixture(scope="module")
def demo_url(demo_module, policy):
    with launched(demo_module.build_demo(policy=policy)) as url:
        yield url


@pytest.fixture(scope="module")
def client(demo_url):
    return Client(demo_url, verbose=False)


def server_paths(policy) -> list[str]:
    from gradio_diffusion_preview.backends.diffusers.tiny import default_tiny_model_dir

    model = policy.catalogue[0].model
    return [model, str(default_tiny_model_dir("sd15").parent), "/root", "/home", "/tmp/gradio"]


def assert_no_server_path(value, policy) -> None:
    text = json.dumps({k: v for k, v in value.items() if k != "images"})
    for path in server_paths(policy):
        assert path not in text, f"{path} leaked in {text[:300]}"


def test_a_good_request_runs_and_names_the_model_by_its_catalogue_id(client, policy):
    job = client.submit(*args(), api_name="/generate")
    final = job.result(timeout=120)
    assert final["status"] == "done", final["message"]
    for value in job.outputs():
        assert value["model"] in (None, "shapes")
        assert_no_server_path(value, policy)


# -- finding 1: one user holding everyone ------------------------------------------------------


def test_the_largest_job_the_old_ui_allowed_is_refused(client, policy):
    final = final_state(
        client.submit(*args(steps=150, width=1024, height=1024, num_images=4), api_name="/generate")
    )
    assert final["status"] == "error" and final["reason"] == "invalid_request"
    assert (
        f"steps=150 is not allowed (at most {policy.limits.max_steps} steps" in (final["message"])
    )


def test_the_demos_runs_have_a_time_limit_and_a_bounded_fair_queue(policy, demo_url):
    assert policy.limits.time_limit <= 300 and policy.max_queue <= 16
    assert policy.runs_per_session == 1


# -- finding 2: unbounded negative prompt ------------------------------------------------------


def test_a_huge_negative_prompt_is_refused_quickly(client):
    final = final_state(client.submit(*args(negative_prompt="x" * 200_000), api_name="/generate"))
    assert final["status"] == "error" and "negative_prompt=" in final["message"]
    assert len(final["message"]) < 400


# -- finding 3: the browser choosing server internals -----------------------------------------


@pytest.mark.parametrize("model", ["/", "/etc", "/no/such/folder", "/root/.cache/huggingface"])
def test_any_folder_as_model_gets_one_refusal_that_maps_nothing(client, model):
    final = final_state(client.submit(*args(model=model), api_name="/generate"))
    assert final["status"] == "error"
    shown = final["message"].replace("'<server path>'", "M").replace(repr(model), "M")
    assert shown == (
        "model=M is not allowed (not one of this "
        "app's models). Fix: choose one of: shapes, shapes-dpm, shapes-unipc, shapes-ddim."
    )


@pytest.mark.parametrize(
    "options, refusal",
    [
        ('{"device": "cuda"}', "not an option visitors may set"),
        ('{"dtype": "float16"}', "not an option visitors may set"),
        # visitors pick the previewer, but only among the catalogue's choices: never a folder
        ('{"previewer": "taesd:/root"}', "not one of this app's choices for previewer"),
        ('{"previewer": "taesd"}', "not one of this app's choices for previewer"),
    ],
)
def test_device_dtype_and_paths_are_not_the_visitors(client, options, refusal):
    final = final_state(client.submit(*args(options=options), api_name="/generate"))
    assert final["status"] == "error" and refusal in final["message"], final["message"]


def test_visitors_pick_sampler_and_previewer_among_the_catalogues_choices(client):
    options = '{"scheduler": "dpm++", "previewer": "none"}'
    final = final_state(client.submit(*args(options=options, steps=2), api_name="/generate"))
    assert final["status"] == "done", final
    assert final["params"]["sampler"], final["params"]


def test_the_model_dropdown_and_config_show_no_server_path(demo_url, policy):
    config = httpx.get(f"{demo_url.rstrip('/')}/config").text
    for path in server_paths(policy)[:2]:
        assert path not in config


# -- finding 5: malformed input ----------------------------------------------------------------

BAD_INPUTS = [
    ("steps", "abc"),
    ("steps", ""),
    ("steps", 1.5),
    ("steps", -1),
    ("steps", 0),
    ("steps", 51),
    ("steps", 10**9),
    ("steps", []),
    ("steps", {"n": 1}),
    ("steps", "NaN"),
    ("seed", -5),
    ("seed", 1.5),
    ("seed", "x"),
    ("seed", 2**32),
    ("seed", -2),
    ("seed", [1]),
    ("seed", "nan"),
    ("width", 1088),
    ("width", 63),
    ("width", 100),
    ("width", "wide"),
    ("width", 64.5),
    ("width", -64),
    ("width", 0),
    ("height", 4096),
    ("height", "tall"),
    ("height", 72.25),
    ("num_images", 2.7),
    ("num_images", 0),
    ("num_images", 3),
    ("num_images", "two"),
    ("num_images", -1),
    ("guidance", "high"),
    ("guidance", -1),
    ("guidance", 31),
    ("guidance", "inf"),
    ("prompt", ""),
    ("prompt", "   "),
    ("prompt", "x" * 1001),
    ("prompt", 123),
    ("prompt", None),
    ("prompt", ["a"]),
    ("negative_prompt", "x" * 1001),
    ("negative_prompt", 5),
    ("model", "../shapes"),
    ("model", "shapes "),
    ("model", 5),
    ("model", "C:\\Windows"),
    ("backend", "nope"),
    ("backend", "../../etc"),
    ("backend", None),
    ("options", "not json"),
    ("options", "[1]"),
    ("options", 5),
    ("options", '{"scheduler": "bogus"}'),
    ("options", '{"scheduler": 5}'),
    ("options", '{"cache_dir": "/tmp"}'),
]


def expected_field(field: str, value) -> str:
    if field == "options" and (value in ("not json", "[1]") or not isinstance(value, str)):
        return "Backend options"
    if field == "options" and "scheduler" in value:
        return "scheduler"  # the backend's own check of the option's value
    if field == "options":
        return "options"
    return f"{field}="


@pytest.mark.parametrize("field, value", BAD_INPUTS)
def test_bad_input_through_gradio_client_names_the_field(client, policy, field, value):
    final = final_state(client.submit(*args(**{field: value}), api_name="/generate"))
    assert final["status"] == "error", (field, value, final)
    assert final["reason"] == "invalid_request", final
    assert_no_server_path(final, policy)
    if field == "prompt" and isinstance(value, str) and not value.strip():
        # a slip, not a setting: the visitor reads one short sentence (the owner's detail is
        # in the log)
        assert final["message"] == "Type a prompt first.", final["message"]
        return
    assert expected_field(field, value) in final["message"], final["message"]
    assert "Fix:" in final["message"] or "scheduler" in final["message"]


def sse_final(http: httpx.Client, body: str) -> tuple[str, object]:
    posted = http.post(
        "/gradio_api/call/generate", content=body, headers={"content-type": "application/json"}
    )
    if posted.status_code != 200:
        return "refused", posted.text
    event_id = posted.json()["event_id"]
    kind, data = None, None
    with http.stream("GET", f"/gradio_api/call/generate/{event_id}") as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
    return kind, data


RAW_BODIES = {
    "NaN seed": json.dumps({"data": args(seed=math.nan)}),
    "Infinity steps": json.dumps({"data": args(steps=math.inf)}),
    "-Infinity width": json.dumps({"data": args(width=-math.inf)}),
    "NaN guidance": json.dumps({"data": args(guidance=math.nan)}),
    "NaN images": json.dumps({"data": args(num_images=math.nan)}),
    "true steps": json.dumps({"data": args(steps=True)}),
}


@pytest.mark.parametrize("name", RAW_BODIES)
def test_bad_numbers_over_raw_http_name_the_field(demo_url, policy, name):
    with httpx.Client(base_url=demo_url, timeout=60) as http:
        kind, data = sse_final(http, RAW_BODIES[name])
        if kind == "refused":  # JSON with NaN may be refused as a whole: fine, and clear
            assert "json" in str(data).lower() or "nan" in str(data).lower(), data
        else:
            assert kind == "error", (kind, data)  # the event's error carries the reason
            message = data["error"]
            assert message.endswith("(reason: invalid_request)"), message
            field = name.split()[1].replace("images", "num_images")
            assert f"{field}=" in message, message
            assert_no_server_path({"message": message}, policy)
        # the server serves the next request
        kind, data = sse_final(http, json.dumps({"data": args()}))
        assert kind == "complete" and data[0]["status"] == "done", data


def test_the_ui_limits_agree_with_the_policy(demo_url, policy):
    config = httpx.get(f"{demo_url.rstrip('/')}/config").json()
    sliders: dict[str, float] = {}
    for c in config["components"]:  # the Generate tab's: the first of each label
        if c.get("type") == "slider":
            sliders.setdefault(c["props"]["label"], c["props"]["maximum"])
    limits = policy.limits
    assert sliders["Steps"] == limits.max_steps
    # the default model's own size range (the shapes model: 64 to 128 px), within the limits
    assert sliders["Width"] == sliders["Height"] == 128 <= limits.max_side
    assert sliders["Images"] == limits.max_images


def test_the_demo_offers_inference_models_and_says_why_they_cannot_run_before_a_run(
    policy, monkeypatch, caplog
):
    """A visitor reads one plain line; the owner's fix (the environment variable) is logged."""
    offered = [e.id for e in policy.entries_for("hf-inference")]
    assert offered == ["flux-schnell", "sdxl", "flux-kontext", "qwen-image-edit"]
    assert controls.unavailable_reason("diffusers") is None
    with caplog.at_level(logging.INFO, logger="gradio_diffusion_preview.controls"):
        reason = controls.unavailable_reason("hf-inference")  # the tests run offline
    assert reason == "this server is offline" and "HF_HUB_OFFLINE" in caplog.text
    note = controls.entry_note(policy.entry("hf-inference", "sdxl"))
    assert note.endswith("**Not available here:** this server is offline.")
    assert "HF_HUB_OFFLINE" not in note
    from huggingface_hub import constants  # read at its import: set it as the server would have

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gradio_diffusion_preview.controls"):
        reason = controls.unavailable_reason("hf-inference")  # read when chosen, not at start
    assert reason == "it needs an access token this server does not have"
    assert "HF_TOKEN" in caplog.text
