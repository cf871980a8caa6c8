"""The remote Gradio backend against real Gradio apps on loopback: a DiffusionPreview app whose
steps are relayed one by one (previews, Stop, queue position, the remote's own phases and
failure reasons, the final image), the common image Space, detection and configuration, the
token and telemetry traps, the plugin and the conformance kit.

The remote apps (tests/remote_gradio_apps.py) run in this process with the ``serve`` fixture,
or in a subprocess where the test needs a separate machine's view (the conformance kit checks
that this side writes no files).
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import numpy as np
import offline_tls
import pytest
from gradio_client import Client
from remote_gradio_apps import image_app, preview_app
from remote_gradio_client import gradio_backend
from toy_backends import BatchPreviewBackend, CountingBackend, Gate, WaitingBackend

from gradio_diffusion_preview import Failed, Finished, RunControl, Started, Status, Step
from gradio_diffusion_preview.backends.remote_gradio.backend import (
    RemoteGradioBackend,
    UnconfiguredGradioBackend,
)
from gradio_diffusion_preview.endpoints import Endpoint, EndpointConfigError
from gradio_diffusion_preview.plugins import Registry
from gradio_diffusion_preview.request import BackendUnavailable, build_request, validate_request
from gradio_diffusion_preview.testing import check_backend, run_backend
from gradio_diffusion_preview.testing.file_writes import forbidden_writes
from gradio_diffusion_preview.testing.suite import CHECKS

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[3]
CANARY = "hf_canaryTOKENthatMustNeverLeave0000"


def colour(image) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(image.convert("RGB"))[0, 0])


def near(seen: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Colours equal up to lossy compression (Gradio sends gr.Image results as WebP)."""
    return all(abs(a - b) <= 4 for a, b in zip(seen, expected, strict=True))


def kinds(events) -> list[str]:
    return [type(event).__name__ for event in events]


@pytest.fixture(scope="module")
def counting_url(serve_module):
    """A DiffusionPreview remote streaming a counting backend, shared by this module's tests
    that only read from it (one launch, not one per test)."""
    return serve_module(preview_app(CountingBackend(step_seconds=0.1)))


# --- a DiffusionPreview remote: every step relayed ------------------------------------------


def test_previews_are_relayed_step_by_step_then_the_final_image(counting_url):
    backend = gradio_backend(counting_url)
    rec = run_backend(backend, steps=8, seed=7, watch_files=True)
    started, steps, finished = rec.started, rec.steps, rec.finished
    assert finished is not None, rec.trace()
    assert started.total_steps == 8 and started.seeds == [7] and started.preview_size == (64, 64)
    assert [s.step for s in steps] == sorted({s.step for s in steps}) and steps[-1].step == 8
    previews = [colour(s.preview) for s in steps if s.preview is not None]
    assert len(set(previews)) >= 3, previews  # the counting backend's shades, one per step
    assert all(s.preview.size == (64, 64) for s in steps if s.preview is not None)
    (image,) = finished.images
    assert image.size == (64, 64) and colour(image)[1:] == (90, 200)  # the remote's image
    assert finished.seeds == [7]
    assert finished.metadata["remote"] == counting_url.rstrip("/")
    assert finished.metadata["remote_backend"] == "counting"
    # the client downloads nothing: previews stay data URLs, the final image is fetched to
    # memory (the remote's own cache files are written by its server's threads, not the run's)
    assert not forbidden_writes(rec.writes, ())


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` until true; ``timeout`` only catches a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.02)


def test_stop_cancels_the_remote_run_within_one_step(serve):
    # The remote's steps wait at a gate: two are let through, then the remote run can only end
    # (Stop reached it) or wait for a third that is let through only after it ended. (That the
    # local run returns at once is test_remote_gradio_traps.py's first test.)
    gate = Gate()
    counting = CountingBackend(gate=gate)
    backend = gradio_backend(serve(preview_app(counting)))
    request = validate_request(build_request(backend, {"prompt": "fox", "steps": 30}), backend)
    control = RunControl()
    events, at_cancel = [], None
    gate.release(2)
    for event in backend.generate(request, control):
        events.append(event)
        if isinstance(event, Step) and event.step >= 1 and at_cancel is None:
            at_cancel = counting.steps_run
            control.cancel()
    assert not [e for e in events if isinstance(e, Finished | Failed)], kinds(events)
    wait_until(lambda: counting.runs_ended == 1, 60, "Stop to end the remote run")
    gate.open()  # a remote run still going would now run all its steps
    # the step under way when Stop arrived may complete; no other step starts
    assert counting.steps_run - at_cancel <= 1, (at_cancel, counting.steps_run)


def test_a_batch_relays_one_preview_per_image(serve):
    backend = gradio_backend(serve(preview_app(BatchPreviewBackend(step_seconds=0.05))))
    rec = run_backend(backend, steps=5, seed=3, num_images=2)
    assert rec.finished is not None, rec.trace()
    previews = [s.preview for s in rec.steps if s.preview is not None]
    assert previews and all(isinstance(p, list) and len(p) == 2 for p in previews)
    assert colour(previews[-1][0]) != colour(previews[-1][1])
    assert len(rec.finished.images) == 2 and rec.finished.seeds == [3, 4]


def run_past_the_queue(backend, on_status, release_all, **fields) -> list:
    """The events of a run of ``backend`` whose remote's only slot another client holds at a
    gate: ``on_status(status)`` for each Status the run reports (the test lets the blocker go
    once the run has reported its place in the remote's queue: the gate decides, not a blocker
    slow enough), and ``release_all()`` at the end, whatever happened."""
    request = validate_request(build_request(backend, {"prompt": "fox", **fields}), backend)
    events = []
    try:
        for event in backend.generate(request, RunControl()):
            events.append(event)
            if isinstance(event, Status):
                on_status(event)
    finally:
        release_all()
    return events


def test_the_remote_queue_position_is_reported_while_waiting(serve):
    gate = Gate()
    url = serve(preview_app(CountingBackend(gate=gate), concurrency_limit=1))
    blocker = Client(url, verbose=False, download_files=False, token=False)
    job = blocker.submit("first", "", "flat", 30, 7.5, 1, 64, 64, 1, api_name="/generate")
    while not job.outputs():  # the blocker holds the remote's only slot, at the gate
        time.sleep(0.02)

    def on_status(status: Status) -> None:
        # queued: the blocker's 30 steps go through; the run then waits at the gate for its
        # first step, generating, until the test opens the gate
        if status.phase == "queued" and not on_status.released:
            gate.release(30)
            on_status.released = True
        elif status.phase == "generating":
            gate.open()

    on_status.released = False
    events = run_past_the_queue(gradio_backend(url), on_status, gate.open, steps=4)
    statuses = [e for e in events if isinstance(e, Status)]
    assert isinstance(events[-1], Finished), events
    assert statuses[0].phase == "queued" and statuses[0].position == 1, statuses
    assert statuses[0].queue_size == 1
    assert statuses[-1].phase == "generating", events  # the queued notice is replaced once it runs
    first_step = kinds(events).index("Step")
    assert all(isinstance(e, Status) for e in events[1:first_step])
    job.result(timeout=30)


def test_the_remote_runs_phase_reason_and_retry_after_are_carried_over(serve):
    waiting = WaitingBackend(
        waits=[
            (Status("queued", "In the service's queue", 3, 5, 4.0), 0.4),
            (Status("loading"), 0.3),
        ],
        failure=Failed("The service is rate limited.", "rate_limited", retry_after=30.0),
    )
    backend = gradio_backend(serve(preview_app(waiting)))
    rec = run_backend(backend, steps=4)
    statuses = [e for e in rec.events if isinstance(e, Status)]
    assert [s.phase for s in statuses] == ["queued", "loading"], rec.trace()
    assert (statuses[0].position, statuses[0].queue_size) == (3, 5)
    assert statuses[0].message == "In the service's queue"
    failed = rec.failed
    assert failed.reason == "rate_limited" and failed.retry_after == 30.0
    assert "The service is rate limited." in failed.message


# --- an image or gallery endpoint: status, then the image ------------------------------------


NO_STEP_IMAGES = {"step_events": False, "step_previews": False}
"""image_app is a generator that yields None before its image: it streams no step images."""


def test_an_image_space_reports_status_while_it_runs_then_the_image(serve):
    backend = gradio_backend(serve(image_app(delay=0.4)), capabilities=NO_STEP_IMAGES)
    assert backend.list_models()[0].id == "default"
    caps = backend.capabilities
    assert not caps.step_events and not caps.step_previews and caps.seed
    assert not caps.negative_prompt and not caps.guidance and caps.max_size == 1024
    rec = run_backend(backend, seed=5, width=128, height=64)
    assert isinstance(rec.events[0], Started) and rec.started.preview_size is None
    statuses = [e for e in rec.events if isinstance(e, Status)]
    assert statuses and statuses[0].phase == "generating", rec.trace()
    assert any("/4 steps" in s.message for s in statuses)  # the Space's gr.Progress
    assert statuses[-1].phase == "fetching" and not rec.steps
    (image,) = rec.finished.images
    assert image.size == (128, 64) and near(colour(image), (200, 30, 30))
    assert rec.finished.seeds == [5]


def test_an_image_space_reports_its_queue_position(serve):
    gate = threading.Event()
    url = serve(image_app(delay=0.1, concurrency_limit=1, gate=gate))
    blocker = Client(url, verbose=False, download_files=False, token=False)
    job = blocker.submit("first", 1, 64, 64, api_name="/infer")
    while job.status().code.name not in ("PROCESSING", "PROGRESS", "ITERATING"):
        time.sleep(0.02)
    events = run_past_the_queue(
        gradio_backend(url), lambda status: status.phase == "queued" and gate.set(), gate.set
    )
    statuses = [e for e in events if isinstance(e, Status)]
    assert statuses[0].phase == "queued" and statuses[0].position == 1, events
    assert "generating" in [s.phase for s in statuses] and isinstance(events[-1], Finished)
    job.result(timeout=30)


def test_a_gallery_space_gives_its_images(serve):
    backend = gradio_backend(serve(image_app(delay=0.1, gallery=True)))
    rec = run_backend(backend, seed=1)
    assert rec.finished is not None, rec.trace()  # under full load once it did not finish
    (image,) = rec.finished.images
    assert near(colour(image), (200, 30, 30)), rec.trace()


def test_an_image_endpoint_can_be_read_from_a_diffusion_preview_app(counting_url):
    """The widget's running states hold no image: they are no steps (and no events: the
    backend yielded ``None`` for each); its last state is the final image even when it comes
    as an update before the job's completion (seen as "Step 2/3" under two busy loops)."""
    backend = gradio_backend(counting_url, mode="image")
    rec = run_backend(backend, steps=3)
    assert None not in rec.events, rec.trace()
    assert not rec.steps and rec.finished is not None, rec.trace()
    assert colour(rec.finished.images[0])[1:] == (90, 200)


# --- detection and configuration ---------------------------------------------------------------


def test_the_endpoint_parameters_and_limits_are_detected(counting_url, serve):
    backend = gradio_backend(counting_url)
    assert [m.id for m in backend.list_models()] == ["flat"]  # the model dropdown's choices
    api = backend.session().api
    assert (api.api_name, api.mode) == ("/generate", "preview")
    assert dict(api.inputs) == {
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "model": "model",
        "steps": "steps",
        "guidance": "guidance",
        "seed": "seed",
        "width": "width",
        "height": "height",
        "num_images": "num_images",
    }
    caps = backend.capabilities
    assert caps.step_events and caps.step_previews and caps.finish_early  # "Use this preview"
    assert caps.steps_range == (1, 200) and caps.default_steps == 8
    assert (caps.min_size, caps.max_size, caps.default_size) == (64, 512, (64, 64))
    assert caps.guidance_range == (0.0, 20.0) and caps.max_batch == 4
    assert backend.describe()["remote_api"] == {"api_name": "/generate", "mode": "preview"}


def test_options_map_unusual_parameters_and_fix_required_ones(serve):
    import gradio as gr

    received = []

    def paint(text, style, num_inference_steps, cfg):
        received.append((text, style, num_inference_steps, cfg))
        return PIL_red()

    with gr.Blocks() as app:
        text = gr.Textbox(label="Describe it")
        style = gr.Textbox(label="Style")
        steps = gr.Slider(1, 50, value=25, step=1, label="Quality")
        cfg = gr.Slider(0, 10, value=3, label="CFG")
        gr.Button().click(paint, [text, style, steps, cfg], gr.Image(), api_name="paint")
    url = serve(app)
    plain = gradio_backend(url)
    with pytest.raises(BackendUnavailable) as refused:
        validate_request(build_request(plain, {"prompt": "x"}), plain)
    assert "needs 'style' (Textbox)" in str(refused.value)
    assert "options.fixed" in str(refused.value)
    backend = gradio_backend(
        url, fixed={"style": "ink"}, inputs={"steps": "num_inference_steps"}, capabilities={}
    )
    backend.list_models()  # asks the app: the kit's default request then fits what it takes
    rec = run_backend(backend, prompt="a heron", steps=12, guidance=2.5)
    assert rec.finished is not None, rec.trace()
    assert received[-1] == ("a heron", "ink", 12, 2.5)  # cfg recognised by its name


def PIL_red():
    from remote_gradio_apps import red_image

    return red_image()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"mode": "fast"}, "options.mode"),
        ({"api_nam": "/x"}, "options.api_nam"),
        ({"capabilities": {"max_sise": 4}}, "unknown capability 'max_sise'"),
        ({"capabilities": {"default_steps": 500}}, "default_steps 500 is outside"),
        ({"read_timeout": 5}, "options.read_timeout"),
        ({"heartbeat_seconds": 30, "read_timeout": 20}, "not above the remote's 30-second"),
        ({"heartbeat_seconds": 0}, "options.heartbeat_seconds"),
        ({"inputs": {"colour": "c"}}, "options.inputs.colour"),
    ],
)
def test_wrong_options_are_refused_with_the_option_and_the_fix(options, says):
    with pytest.raises(EndpointConfigError) as error:
        gradio_backend("http://127.0.0.1:9", **options)
    assert says in str(error.value) and "Fix:" in str(error.value)


def test_an_endpoint_of_another_kind_is_refused():
    with pytest.raises(EndpointConfigError, match="of kind 'a1111', not 'gradio'"):
        RemoteGradioBackend(Endpoint(id="x", kind="a1111", url="http://127.0.0.1:9"))


def test_registering_and_availability_make_no_network_call():
    # port 9 (discard) has nothing listening here; a connection attempt would fail loudly
    backend = gradio_backend("http://127.0.0.1:9")
    assert backend.availability().usable
    assert backend.describe()["endpoint"]["url"] == "http://127.0.0.1:9"
    assert backend._session is None


def test_availability_names_a_missing_token_or_password(monkeypatch):
    monkeypatch.delenv("STUDIO_TOKEN", raising=False)
    needs = RemoteGradioBackend(
        Endpoint(id="s", kind="gradio", url="owner/space", token_env="STUDIO_TOKEN")
    ).availability()
    assert needs.state == "needs_token" and "STUDIO_TOKEN" in needs.message
    login = RemoteGradioBackend(
        Endpoint(id="s", kind="gradio", url="http://h", username="ann", password_env="NO_PW")
    ).availability()
    assert login.state == "not_configured" and "$NO_PW" in login.message


# --- the token and telemetry traps --------------------------------------------------------------


def test_the_local_hugging_face_token_is_never_sent_to_a_remote_app(serve, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    headers: list[dict[str, str]] = []
    url = serve(preview_app(CountingBackend(), headers=headers))
    rec = run_backend(gradio_backend(url), steps=2)
    assert rec.finished is not None, rec.trace()
    assert headers and not any(CANARY in value for h in headers for value in h.values())
    assert not any(name in h for h in headers for name in ("authorization", "x-hf-authorization"))
    configured = RemoteGradioBackend(
        Endpoint(id="s", kind="gradio", url=url, token="hf_configuredForThisEndpoint")
    )
    assert run_backend(configured, steps=2).finished is not None
    assert headers[-1]["x-hf-authorization"] == "Bearer hf_configuredForThisEndpoint"
    assert not any(CANARY in value for value in headers[-1].values())


def test_no_telemetry_is_sent_even_when_the_environment_allows_it(counting_url, monkeypatch):
    import gradio_client.client as client_module

    sent = []
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    monkeypatch.setattr(client_module, "send_telemetry", lambda **kw: sent.append(kw))
    Client(counting_url, verbose=False, download_files=False, token=False)  # the trap itself
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sent, "the plain client should have sent telemetry (the spy is not working)"
    sent.clear()
    gradio_backend(counting_url).list_models()
    time.sleep(0.3)
    assert sent == []


# --- the plugin, the CLI, the conformance kit ---------------------------------------------------


def test_with_nothing_configured_the_plugin_registers_a_backend_saying_how(monkeypatch):
    monkeypatch.delenv("DIFFUSION_PREVIEW_GRADIO_URL", raising=False)
    monkeypatch.delenv("DIFFUSION_PREVIEW_ENDPOINTS", raising=False)
    backend = Registry(load_entry_points=False).get("gradio")
    assert isinstance(backend, UnconfiguredGradioBackend)
    availability = backend.availability()
    assert availability.state == "not_configured"
    assert "DIFFUSION_PREVIEW_GRADIO_URL" in availability.message
    assert "docs/backends/remote-gradio.md" in availability.message


def test_endpoints_from_the_environment_and_a_file_each_become_a_backend(tmp_path, monkeypatch):
    file = tmp_path / "endpoints.toml"
    file.write_text(
        '[[endpoints]]\nid = "studio"\nkind = "gradio"\nurl = "http://10.0.0.5:7860"\n'
        'options = { api_name = "/generate" }\n\n'
        '[[endpoints]]\nid = "broken"\nkind = "gradio"\nurl = "http://h"\n'
        'options = { mode = "fast" }\n'
    )
    monkeypatch.setenv("DIFFUSION_PREVIEW_ENDPOINTS", str(file))
    monkeypatch.setenv("DIFFUSION_PREVIEW_GRADIO_URL", "owner/space")
    backends = Registry(load_entry_points=False).backends()
    assert isinstance(backends["gradio"], RemoteGradioBackend)
    assert backends["gradio"].display_name == "Space owner/space"
    assert backends["studio"].display_name == "Remote Gradio app (studio)"  # not its address
    assert backends["studio"].settings.api_name == "/generate"
    assert isinstance(backends["broken"], UnconfiguredGradioBackend)
    assert "options.mode" in backends["broken"].availability().message


def test_the_plugins_cli_shows_the_configuration_state(monkeypatch, capsys):
    from gradio_diffusion_preview import cli, plugins

    monkeypatch.delenv("DIFFUSION_PREVIEW_ENDPOINTS", raising=False)
    monkeypatch.delenv("DIFFUSION_PREVIEW_GRADIO_URL", raising=False)
    monkeypatch.setenv("DIFFUSION_PREVIEW_PLUGINS", "")
    plugins.reset_registry()
    try:
        assert cli.main(["plugins", "--no-models"]) == 0
        out = capsys.readouterr().out
        assert "  backend gradio: Remote Gradio app (not configured) (remote)\n" in out
        assert "    status:  not_configured: No remote Gradio app is configured." in out
        monkeypatch.setenv("DIFFUSION_PREVIEW_GRADIO_URL", "http://127.0.0.1:7861")
        monkeypatch.setenv("DIFFUSION_PREVIEW_GRADIO_TOKEN", CANARY)
        plugins.reset_registry()
        assert cli.main(["plugins", "--no-models"]) == 0
        out = capsys.readouterr().out
        assert "  backend gradio: Remote Gradio app (remote)\n" in out
        assert "    endpoint: http://127.0.0.1:7861; token set\n" in out
        assert CANARY not in out
    finally:
        plugins.reset_registry()


IMAGE_TO_IMAGE = {"image_to_image", "image_to_image_preview"}
"""The kit's checks for backends that take an input image (the remote Gradio backend does not)."""


@pytest.mark.slow
def test_the_backend_passes_the_conformance_kit(subprocess_remote):
    # steps long enough for "Use this preview" to reach the remote within one step
    url, _ = subprocess_remote(step_seconds=0.6, models="flat,no-such-model")
    backend = RemoteGradioBackend(
        Endpoint(id="remote-kit", kind="gradio", url=url, models=["flat", "no-such-model"])
    )
    report = check_backend(backend, steps=5, failing_request={"model": "no-such-model"})
    # every check but image-to-image's, which a backend that takes no input image skips
    assert report.passed == [c for c in CHECKS if c not in IMAGE_TO_IMAGE], str(report)
    assert set(report.skipped) == IMAGE_TO_IMAGE, str(report)


def test_an_image_endpoint_passes_the_conformance_kit(serve):
    # The remote runs in this process and writes its own files (Gradio's cache) meanwhile, on
    # its server's threads: the no_files check counts only the run's own threads' writes.
    url = serve(image_app(delay=0.2, seeded=True, refuse="please fail"))
    backend = gradio_backend(url, capabilities=NO_STEP_IMAGES)
    report = check_backend(backend, failing_request={"prompt": "please fail"})
    assert set(report.passed) >= {
        "identity",
        "event_order",
        "steps",
        "status",
        "final_images",
        "seed",
        "no_files",
        "cancel_at_start",
        "failure",
        "stream",
    }, str(report)
    assert set(report.skipped) == {"batch", "cancel", "finish_early"} | IMAGE_TO_IMAGE, str(report)


def test_runs_one_after_another_reuse_one_client(counting_url):
    backend = gradio_backend(counting_url)
    session = backend.session()
    (client,) = session._idle
    for _ in range(2):
        assert run_backend(backend, steps=2).finished is not None
    assert backend.session() is session and session._idle == [client]


def test_a_run_builds_no_tls_context(counting_url, monkeypatch):
    """gradio_client opens an httpx client for each request of a run, and each built its own
    TLS context (about 25 ms of CPU, even over plain HTTP): the backend's clients share one.
    (With httpx building every context again, as outside the suite: see offline_tls.py.)"""
    monkeypatch.setattr(offline_tls.transports, "create_ssl_context", offline_tls.BUILD)
    backend = gradio_backend(counting_url)
    assert run_backend(backend, steps=2).finished is not None  # connected, the context made
    built = []
    make = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(1) or make(*a, **k)
    )
    for _ in range(2):
        rec = run_backend(backend, steps=2)
        assert rec.finished is not None, rec.trace()
    assert built == []


def test_stopping_one_run_leaves_a_concurrent_run_on_the_same_endpoint_going(serve):
    # Gradio's /cancel stops every running task of a client session's endpoint, so two runs
    # sharing one client would both stop: each run has a client to itself
    counting = CountingBackend(step_seconds=0.3)
    backend = gradio_backend(serve(preview_app(counting)))
    backend.list_models()
    results = {}

    def run(name, **signal):
        results[name] = run_backend(backend, steps=8, timeout=30, **signal)

    other = threading.Thread(target=run, args=("kept",))
    other.start()
    time.sleep(0.5)
    run("stopped", signal="cancel", signal_after=2)
    other.join(30)
    assert results["stopped"].finished is None and results["stopped"].ended
    kept = results["kept"]
    assert kept.finished is not None, kept.trace()
    assert [s.step for s in kept.steps][-1] == 8
