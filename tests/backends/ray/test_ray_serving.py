"""Ray Serve hosting without a cluster: the settings and the Serve config file (checked against
Serve's own schema), the ``serve`` command line, the wire form of events, the replica class
driven directly on an event loop, the ray backend's configuration, and Serve's errors as
``Failed`` events. The live cluster tests are in test_ray.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import PIL.Image
import pytest
import yaml
from ray.exceptions import ActorDiedError
from ray.serve.exceptions import BackPressureError
from ray.serve.schema import ServeDeploySchema

from gradio_diffusion_preview import Failed, Finished, Started, Status, Step, stream
from gradio_diffusion_preview.backends.ray import backend as ray_backend_module
from gradio_diffusion_preview.backends.ray.admission import Admission, Limits
from gradio_diffusion_preview.backends.ray.backend import RayBackend
from gradio_diffusion_preview.backends.ray.connection import RayUnreachable
from gradio_diffusion_preview.backends.ray.failures import failure_for
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.endpoints import Endpoint
from gradio_diffusion_preview.plugins import Registry
from gradio_diffusion_preview.serving import BackendServer, ServeSettings, build_app
from gradio_diffusion_preview.serving.deployment import load_backend, warm_up
from gradio_diffusion_preview.serving.wire import EncodedImage, from_wire, to_wire

# --- settings and the Serve config -----------------------------------------------------------


def test_config_is_a_serve_config_with_serve_settings_in_deployments():
    settings = ServeSettings(
        app="pool",
        backend_options={"device": "cuda"},
        num_replicas=3,
        max_queued_requests=8,
        num_gpus=1,
        num_cpus=2,
        retry_after=5,
    )
    config = ServeDeploySchema.model_validate(settings.config())
    app = config.applications[0]
    assert (app.name, app.route_prefix) == ("pool", None)
    assert app.import_path == "gradio_diffusion_preview.serving.app:build_app"
    assert app.args["backend"] == "diffusers" and app.args["backend_options"] == {"device": "cuda"}
    deployment = app.deployments[0]
    assert (deployment.num_replicas, deployment.max_ongoing_requests) == (3, 1)
    assert deployment.max_queued_requests == 8
    assert (deployment.ray_actor_options.num_gpus, deployment.ray_actor_options.num_cpus) == (1, 2)
    assert deployment.backpressure_config.retry_after_s == 5
    assert config.proxy_location.value == "Disabled"


def test_autoscaling_replaces_a_fixed_number_of_replicas():
    settings = ServeSettings(autoscaling={"min_replicas": 0, "max_replicas": 8})
    options = settings.deployment_options()
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {
        "min_replicas": 0,
        "max_replicas": 8,
        "target_ongoing_requests": 1.0,
    }
    ServeDeploySchema.model_validate(settings.config())
    with pytest.raises(ValueError, match="either num_replicas or autoscaling"):
        ServeSettings(num_replicas=2, autoscaling={"max_replicas": 4})


def test_build_app_names_a_bad_argument():
    with pytest.raises(ValueError, match="'bogus'.*the args are backend"):
        build_app({"backend": "diffusers", "bogus": 1})


# --- the serve command line ------------------------------------------------------------------


def test_serve_config_prints_the_config_for_the_flags(capsys):
    argv = ["serve", "config", "diffusers", "--app", "pool", "--autoscale", "1", "6"]
    argv += ["--target-ongoing-requests", "1.5", "--max-queued-requests", "12", "--num-gpus", "1"]
    argv += ["--option", "device=cuda", "--option", 'models=["/models/sd15"]']
    argv += ["--warmup", "/models/sd15", "--retry-after", "4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Ray Serve config: backend 'diffusers' as the application 'pool'")
    assert 'options.app = "pool"' in printed
    config = ServeDeploySchema.model_validate(yaml.safe_load(printed))
    app = config.applications[0]
    assert app.args["backend_options"] == {"device": "cuda", "models": ["/models/sd15"]}
    assert app.args["warmup"] == ["/models/sd15"]
    scaling = app.deployments[0].autoscaling_config
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (1, 6)
    assert scaling["target_ongoing_requests"] == 1.5
    assert app.deployments[0].max_queued_requests == 12


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--replicas", "0"], "--replicas"),
        (["--autoscale", "4", "2"], "--autoscale"),
        (["--target-ongoing-requests", "2"], "--target-ongoing-requests needs --autoscale"),
        (["--option", "no-equals-sign"], "--option 'no-equals-sign' is not NAME=VALUE"),
        (["--num-gpus", "-1"], "--num-gpus"),
        (["--max-queued-requests", "-2"], "--max-queued-requests"),
    ],
)
def test_serve_bad_flags_exit_2_naming_the_flag(capsys, flags, named):
    assert main(["serve", "config", *flags]) == 2
    assert named in capsys.readouterr().err


def test_serve_run_non_blocking_needs_a_running_cluster():
    """In a process of its own: this test's worker may hold the Ray modules' session cluster."""
    import subprocess
    import sys

    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "gradio_diffusion_preview", "serve", "run", "--non-blocking",
         "--num-gpus", "0"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--non-blocking needs a running Ray cluster" in done.stderr


# --- the wire form of events -----------------------------------------------------------------

EVENTS = [
    Started(5, "m", [1, 2], 64, 48, 2, (8, 6)),
    Status("queued", "waiting", position=2, queue_size=3, eta=4.5),
    Step(2, 5, np.full((6, 8, 3), 77, np.uint8)),
    Step(3, 5, [np.zeros((6, 8, 3), np.uint8), PIL.Image.new("RGB", (8, 6), (1, 2, 3))]),
    Step(4, 5),
    Finished([PIL.Image.new("RGB", (64, 48), (9, 8, 7))], [1], {"sampler": "euler"}, early=True),
    Failed("no", "busy", retry_after=2.0),
]


@pytest.mark.parametrize(("preview_format", "image_format"), [("array", "array"), ("jpeg", "png")])
def test_every_event_crosses_the_wire_and_back(preview_format, image_format):
    for event in EVENTS:
        wire = to_wire(event, preview_format, image_format)
        assert isinstance(wire, dict) and wire["event"]
        back = from_wire(wire)
        assert type(back) is type(event)
        if isinstance(event, Step):
            previews = event.preview if isinstance(event.preview, list) else [event.preview]
            got = back.preview if isinstance(back.preview, list) else [back.preview]
            for sent, received in zip(previews, got, strict=True):
                if sent is None:
                    assert received is None
                    continue
                expected = np.asarray(sent)
                assert np.asarray(received).shape == expected.shape
                tolerance = 0 if preview_format == "array" else 12
                assert np.abs(np.asarray(received, int) - expected).max() <= tolerance
        elif isinstance(event, Finished):
            assert back.images[0].tobytes() == event.images[0].tobytes()  # lossless both ways
            assert (back.seeds, back.metadata, back.early) == ([1], {"sampler": "euler"}, True)
        else:
            assert back == event


def test_the_wire_carries_images_in_memory_never_files():
    wire = to_wire(EVENTS[5], "jpeg", "png")
    assert isinstance(wire["images"][0], EncodedImage) and wire["images"][0].format == "png"
    assert wire["images"][0].data.startswith(b"\x89PNG")
    wire = to_wire(EVENTS[2])
    assert isinstance(wire["preview"], np.ndarray) and wire["preview"].dtype == np.uint8


def test_final_images_own_their_pixels_when_the_array_is_read_only():
    pixels = np.full((4, 4, 3), 200, np.uint8)
    pixels.setflags(write=False)  # as an array from Ray's object store arrives
    wire = {"event": "finished", "images": [pixels], "seeds": [1], "metadata": {}, "early": False}
    image = from_wire(wire).images[0]
    assert isinstance(image, PIL.Image.Image) and image.getpixel((0, 0)) == (200, 200, 200)


def test_unknown_fields_are_ignored_and_garbage_is_refused():
    assert from_wire({"event": "failed", "message": "m", "reason": "busy", "new": 1}) == Failed(
        "m", "busy"
    )
    with pytest.raises(ValueError, match="not a wire event"):
        from_wire({"event": "nonsense"})
    with pytest.raises(ValueError, match="not a wire event"):
        from_wire(["step"])


# --- the replica side, driven on an event loop without Serve ---------------------------------


def replica_run(server: BackendServer, request: dict, stop_after_steps: int | None = None):
    """The wire items of one run; with ``stop_after_steps`` the stream is closed there, as
    Serve does when the caller cancels."""

    async def collect():
        items = []
        stream_ = server.generate(request, "run-1")
        async for item in stream_:
            items.append(item)
            steps = sum(1 for i in items if i["event"] == "step")
            if stop_after_steps is not None and steps >= stop_after_steps:
                await stream_.aclose()
                break
        return items

    # On a thread of its own: a session's Playwright keeps an event loop running on this one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, collect()).result()


@pytest.fixture(scope="module")
def counting_server() -> BackendServer:
    return BackendServer("ray-counting", plugins=["ray_toys"])


def test_the_replica_names_itself_then_streams_the_run(counting_server):
    items = replica_run(counting_server, {"prompt": "flat", "steps": 3, "seed": 4})
    kinds = [item["event"] for item in items]
    assert kinds[:2] == ["replica", "started"] and kinds[-1] == "finished"
    # Steps the event loop has not sent yet are coalesced (latest wins), as in stream().
    steps = [item["step"] for item in items if item["event"] == "step"]
    assert steps and steps == sorted(set(steps)) and steps[-1] == 3
    assert items[0]["replica"] == "local"  # outside Serve
    description = items[0]["description"]
    assert description["id"] == "ray-counting" and description["models"][0]["id"] == "flat"
    assert description["capabilities"]["finish_early"] is True
    assert from_wire(items[-1]).seeds == [4]


def test_the_replica_validates_the_request_again(counting_server):
    items = replica_run(counting_server, {"prompt": "flat", "steps": 9999})
    failed = from_wire(items[-1])
    assert isinstance(failed, Failed) and failed.reason == "invalid_request"
    assert "steps" in failed.message


def test_a_closed_replica_stream_stops_the_backend_within_one_step(counting_server):
    before = counting_server.backend.steps_run
    items = replica_run(
        counting_server, {"prompt": "flat", "steps": 50, "options": {"delay": 0.05}}, 2
    )
    assert sum(1 for i in items if i["event"] == "step") == 2
    # aclose() returned only once the backend stopped: nothing runs on.
    assert counting_server.backend.steps_run - before in (2, 3)


def test_load_backend_names_the_registered_ids_and_bad_options():
    with pytest.raises(ValueError, match="No backend named 'nope'.*diffusers"):
        load_backend("nope", {}, ())
    with pytest.raises(ValueError, match=r"backend_options \['colour'\] do not fit"):
        load_backend("ray-counting", {"colour": "red"}, ["ray_toys"])
    fresh = load_backend("diffusers", {"device": "cpu", "models": ["/m"]}, ())
    assert fresh.device == "cpu" and [m.id for m in fresh.models()] == ["/m"]


def test_a_warm_up_that_fails_fails_the_replica_with_the_backends_message():
    backend = load_backend("diffusers", {"models": ["/no/such/model"]}, ())
    with pytest.raises(ValueError, match="Warming up model '/no/such/model'.*does not exist"):
        warm_up(backend, "/no/such/model")
    counting = load_backend("ray-counting", {}, ["ray_toys"])
    with pytest.raises(ValueError, match="Warming up model 'nope'.*choose one of: flat"):
        warm_up(counting, "nope")


# --- the ray backend's configuration ---------------------------------------------------------


def test_unconfigured_ray_backend_says_how_to_configure_it(monkeypatch):
    monkeypatch.delenv("DIFFUSION_PREVIEW_RAY_URL", raising=False)
    monkeypatch.delenv("DIFFUSION_PREVIEW_ENDPOINTS", raising=False)
    registry = Registry(load_entry_points=False)
    backend = registry.get("ray")
    availability = backend.availability()
    assert availability.state == "not_configured"
    assert "DIFFUSION_PREVIEW_RAY_URL=auto" in availability.message
    assert "serve run" in availability.message
    last = list(stream("ray", registry=registry, prompt="x"))[-1]
    assert last.status == "error" and last.reason == "unavailable"
    assert last.message == availability.message


def test_ray_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIFFUSION_PREVIEW_RAY_URL", "auto")
    backend = Registry(load_entry_points=False).get("ray")
    assert backend.availability().usable  # network-free: nothing is contacted
    described = backend.describe()
    assert described["endpoint"]["url"] == "auto" and described["app"] == "diffusion-preview"
    assert described["hosts"] == "diffusers" and described["display_name"].startswith("diffusers")
    # Until a replica answers, the capabilities are those of the installed backend it hosts.
    assert backend.capabilities.finish_early and backend.capabilities.any_model


def test_ray_backends_from_the_endpoints_file_show_in_the_cli(monkeypatch, tmp_path, capsys):
    endpoints = tmp_path / "endpoints.json"
    entries = [
        {"id": "gpu-pool", "kind": "ray", "url": "auto", "options": {"app": "pool"}},
        {"id": "other", "kind": "a1111", "url": "http://127.0.0.1:7860"},
    ]
    endpoints.write_text(json.dumps({"endpoints": entries}))
    monkeypatch.setenv("DIFFUSION_PREVIEW_ENDPOINTS", str(endpoints))
    monkeypatch.delenv("DIFFUSION_PREVIEW_RAY_URL", raising=False)
    backends = Registry(load_entry_points=False).backends()
    assert "gpu-pool" in backends and "ray" not in backends
    assert backends["gpu-pool"].app == "pool"
    monkeypatch.setenv("DIFFUSION_PREVIEW_PLUGINS", "")
    from gradio_diffusion_preview.plugins import reset_registry

    reset_registry()
    try:
        assert main(["plugins", "--no-models"]) == 0
    finally:
        reset_registry()
    printed = capsys.readouterr().out
    assert "backend gpu-pool: diffusers on Ray Serve (pool) (remote)" in printed
    assert "endpoint: auto" in printed


def test_an_unreadable_endpoints_file_is_explained_by_the_ray_backend(monkeypatch, tmp_path):
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text("{not json")
    monkeypatch.setenv("DIFFUSION_PREVIEW_ENDPOINTS", str(endpoints))
    registry = Registry(load_entry_points=False)
    availability = registry.get("ray").availability()
    assert availability.state == "not_configured" and "is not valid json" in availability.message
    last = list(stream("ray", registry=registry, prompt="x"))[-1]
    assert last.status == "error" and last.message == availability.message


def test_ray_client_addresses_are_refused_with_the_fix():
    backend = RayBackend.for_app("pool", address="ray://head:10001")
    availability = backend.availability()
    assert availability.state == "unavailable"
    assert "do not work through Ray Client" in availability.message
    assert "set the url to auto" in availability.message


def test_without_ray_installed_the_backend_says_how_to_install_it(monkeypatch):
    real = ray_backend_module.importlib.util.find_spec
    monkeypatch.setattr(
        ray_backend_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ray" else real(name, *a),
    )
    backend = RayBackend(Endpoint(id="ray", kind="ray", url="auto"))
    availability = backend.availability()
    assert availability.state == "unavailable"
    assert "pip install 'gradio-diffusion-preview[ray]'" in availability.message


# --- Serve's errors as Failed events ---------------------------------------------------------


def fail(error, typical_run=None, replica="abc123"):
    return failure_for(
        error, backend_id="ray", app="pool", replica=replica, typical_run=typical_run
    )


PLAIN = re.compile(r"^[^\n]+[.]$")
"""One sentence on one line: no Ray boilerplate, tracebacks or second paragraphs."""
INTERNALS = ("pid", "ip:", "actor_id", "ray stop", "backpressure", "num_queued", "Error:")


def assert_plain(message: str) -> None:
    assert PLAIN.match(message) and ". " not in message, message
    assert not any(word in message for word in INTERNALS), message
    assert not re.search(r"\d+\.\d+\.\d+\.\d+", message), message  # no address


def test_a_full_queue_is_busy_with_the_deployments_retry_after():
    failed = fail(BackPressureError(4, 4, 503, 5.0), typical_run=30.0)
    assert (failed.reason, failed.retry_after) == ("busy", 5.0)
    assert "queue is full" in failed.message and "try again in about 5 s" in failed.message
    assert_plain(failed.message)
    assert fail(BackPressureError(4, 4), typical_run=12.34).retry_after == 12.3
    assert fail(BackPressureError(4, 4)).retry_after == 10.0


def test_a_dead_replica_is_one_plain_sentence():
    ray_words = (
        "The actor died unexpectedly before finishing this task.\n\tclass_name: ServeReplica\n"
        "\tpid: 26536\n\tip: 192.0.2.2\nThe actor is dead because its worker process has "
        "died. Worker exit type: SYSTEM_ERROR ... the process was killed by the OOM killer "
        "... ray stop --force ..."
    )
    failed = fail(type("Died", (ActorDiedError,), {"__str__": lambda self: ray_words})())
    assert failed.reason == "unavailable"
    assert "replica" in failed.message and "next run goes to a healthy replica" in failed.message
    assert_plain(failed.message)


def test_a_missing_app_and_a_removed_deployment_say_how_to_start_it():
    from ray.serve._private.common import DeploymentID
    from ray.serve.exceptions import DeploymentUnavailableError

    removed = fail(DeploymentUnavailableError(DeploymentID(name="BackendServer", app_name="pool")))
    assert removed.reason == "unavailable" and "failed to deploy" not in removed.message
    assert "`python -m gradio_diffusion_preview serve run diffusers --app pool`" in removed.message
    assert_plain(removed.message)


def test_an_unreachable_cluster_and_a_bug_are_told_apart():
    unreachable = fail(RayUnreachable("Cannot connect to the Ray cluster at 'auto'. Fix: ..."))
    assert unreachable.reason == "unavailable" and "Cannot connect" in unreachable.message
    bug = fail(KeyError("event"))
    assert bug.reason == "backend_error" and "KeyError" in bug.message


def test_admission_bounds_the_queue_by_this_process_own_count():
    """Replica slots plus the queue bound, however the runs arrive: the fourth of four runs
    at once on two one-run replicas with a queue of one is refused, and places follow order."""
    admission = Admission()
    limits = Limits(slots=2, max_queued=1)
    assert [admission.enter(run, limits) for run in "abcd"] == [True, True, True, False]
    assert [admission.place(run) for run in "abc"] == [(1, 3), (2, 3), (3, 3)]
    admission.at_replica("a")
    admission.at_replica("b")
    assert admission.place("c") == (1, 1) and admission.place("a") is None
    assert not admission.enter("d", limits)
    admission.leave("a")
    assert admission.enter("d", limits) and admission.place("d") == (2, 2)
    assert all(Admission().enter(run, Limits(2, -1)) for run in "abcdef")  # -1: no bound
