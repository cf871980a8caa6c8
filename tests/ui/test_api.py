"""API users get the same stream as the browser: through gradio_client and through the REST API
(server-sent events), intermediate values carry previews and the final image downloads."""

import io
import json

import httpx
import PIL.Image
import pytest
from api_results import final_state
from gradio_client import Client
from testenv import load_demo_module

STEPS = 12


@pytest.fixture(scope="module")
def demo_module():
    return load_demo_module()


@pytest.fixture
def demo_url(serve, demo_module):
    return serve(demo_module.build_demo())


def request_args(demo_module, seed=42):
    # backend, model, prompt, negative prompt, steps, guidance, seed, width, height, images
    return (
        "diffusers",
        "shapes",  # the demo catalogue's id for its tiny pipeline
        "a red lighthouse",
        "",
        STEPS,
        7.5,
        seed,
        64,
        64,
        1,
    )


def test_gradio_client_receives_previews_then_a_downloadable_final_image(demo_url, demo_module):
    job = Client(demo_url, verbose=False).submit(*request_args(demo_module), api_name="/generate")
    final = job.result(timeout=120)
    previews = [
        out["preview"] for out in job.outputs() if out["status"] == "running" and out["preview"]
    ]
    assert previews and all(p.startswith("data:image/") for p in previews)
    assert final["status"] == "done", final["message"]
    assert final["step"] == final["total_steps"] == STEPS and final["seeds"] == [42]
    with PIL.Image.open(final["images"][0]) as image:  # the client downloads it to a path
        assert image.size == (64, 64)


def test_rest_api_streams_server_sent_events_and_the_image_url_fetches(demo_url, demo_module):
    with httpx.Client(base_url=demo_url, timeout=120) as http:
        posted = http.post(
            "/gradio_api/call/generate", json={"data": [*request_args(demo_module, seed=7), "{}"]}
        )
        assert posted.status_code == 200, posted.text
        event_id = posted.json()["event_id"]
        events = []
        with http.stream("GET", f"/gradio_api/call/generate/{event_id}") as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind in ("generating", "complete"):
                    events.append((kind, json.loads(line[5:])[0]))
        generating = [value for kind, value in events if kind == "generating"]
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "complete", kinds
        assert any(value["preview"] for value in generating)
        final = events[-1][1]
        assert final["status"] == "done" and final["seeds"] == [7]
        image = http.get(final["images"][0]["url"])
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        assert PIL.Image.open(io.BytesIO(image.content)).size == (64, 64)


def test_bad_backend_options_get_clear_errors_and_good_ones_are_honoured(demo_url, demo_module):
    client = Client(demo_url, verbose=False)
    args = request_args(demo_module)
    broken_json = final_state(client.submit(*args, "{scheduler: euler}", api_name="/generate"))
    assert broken_json["status"] == "error"
    assert "not valid JSON" in broken_json["message"] and "Fix:" in broken_json["message"]
    unknown = final_state(client.submit(*args, '{"sampler": "euler"}', api_name="/generate"))
    assert unknown["status"] == "error" and "options.sampler" in unknown["message"]
    assert "scheduler" in unknown["message"]  # the fix lists the backend's real options
    honoured = client.predict(*args, '{"scheduler": "euler_a"}', api_name="/generate")
    assert honoured["status"] == "done", honoured["message"]
