"""Every way a remote Gradio app can fail a run ends it with a clear message and the right
reason, and the next run works: unreachable, a refused login, the app's own error, a stall past
the deadline, the app killed mid-run, an unknown api_name, garbage instead of an image, and a
Gradio 7 app speaking a protocol this gradio_client cannot.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gradio as gr
import httpx
import PIL.Image
import pytest
from api_results import final_state
from gradio_client import Client
from remote_gradio_apps import hanging_app, image_app, preview_app
from remote_gradio_client import gradio_backend
from testenv import free_port, launch_loopback
from toy_backends import CountingBackend, WaitingBackend

from gradio_diffusion_preview import (
    DiffusionPreview,
    Failed,
    Finished,
    RunControl,
    RunState,
    Status,
    Step,
    stream,
)
from gradio_diffusion_preview.backends.remote_failure import RemoteFailure
from gradio_diffusion_preview.backends.remote_gradio.backend import RemoteGradioBackend
from gradio_diffusion_preview.backends.remote_gradio.failures import classify, scrubbed
from gradio_diffusion_preview.backends.remote_gradio.values import final_images
from gradio_diffusion_preview.endpoints import Endpoint
from gradio_diffusion_preview.request import build_request, validate_request
from gradio_diffusion_preview.testing import run_backend

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


def last_state(backend, **fields) -> RunState:
    """The last state of a run through ``stream()``, as the component would show it."""
    states = list(stream(backend, **{"prompt": "a red fox", "steps": 3, **fields}))
    return states[-1]


def expect_error(state: RunState, reason: str, *phrases: str) -> None:
    assert state.status == "error" and state.reason == reason, (state.reason, state.message)
    for phrase in (*phrases, "Fix:"):
        assert phrase in state.message, state.message


def test_a_failure_message_keeps_no_address_or_secret_of_the_endpoint_in_any_case():
    url = "http://ann:pw-canary@Studio.example:7860/app"
    endpoint = Endpoint(id="remote", kind="gradio", url=url, token="hf_tok-canary")
    said = (
        f"ConnectError for {url}/config, then for http://studio.example:7860/app/info "
        "(sent Bearer hf_tok-canary)"
    )
    failure = scrubbed(RemoteFailure(said, "unavailable", 5.0), endpoint)
    assert "canary" not in failure.message and "studio" not in failure.message.lower()
    assert failure.message.count("the endpoint's address") == 2
    assert (failure.reason, failure.retry_after) == ("unavailable", 5.0)


# --- unreachable and refused --------------------------------------------------------------------


def test_an_unreachable_app_fails_fast_as_unavailable():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    state = last_state(gradio_backend(url))
    expect_error(state, "unavailable", "cannot be reached", "backend 'remote'")
    assert url not in state.message  # visitors read it: no address of the server's machines
    listed = RemoteGradioBackend(Endpoint(id="r", kind="gradio", url=url, models=["m"]))
    rec = run_backend(listed)  # models configured: the run itself finds out
    assert rec.failed.reason == "unavailable" and "cannot be reached" in rec.failed.message
    assert time.monotonic() - started < 10


@pytest.fixture
def login_app():
    """A remote app behind a login (user ann, password s3cret)."""
    app = preview_app(CountingBackend()).queue()
    url = launch_loopback(app, auth=("ann", "s3cret"))
    yield url
    app.close()


def test_a_refused_login_is_unauthorized_and_never_shows_the_password(login_app):
    def backend(**login):
        return RemoteGradioBackend(Endpoint(id="r", kind="gradio", url=login_app, **login))

    nobody = last_state(backend())
    expect_error(nobody, "unauthorized", "refused the login", "DIFFUSION_PREVIEW_GRADIO_USER")
    wrong = last_state(backend(username="ann", password="wrong-pass"))
    expect_error(wrong, "unauthorized", "refused the login")
    assert "wrong-pass" not in wrong.message
    assert last_state(backend(username="ann", password="s3cret")).status == "done"


# --- the app's own error, a stall, a crash --------------------------------------------------


def test_the_apps_own_error_is_a_remote_error_with_its_message(serve):
    def paint(prompt: str):
        raise gr.Error("The GPU is on fire; try again later.")

    with gr.Blocks() as app:
        gr.Button().click(paint, gr.Textbox(label="Prompt"), gr.Image(), api_name="paint")
    backend = gradio_backend(serve(app))
    rec = run_backend(backend)
    assert rec.failed.reason == "remote_error", rec.trace()
    assert "The GPU is on fire; try again later." in rec.failed.message
    assert "failed" in rec.failed.message


def test_a_run_stalled_past_the_deadline_times_out_and_stops_the_remote_run(serve):
    waiting = WaitingBackend(waits=[(Status("generating", "Thinking…"), 60.0)])
    backend = gradio_backend(serve(preview_app(waiting)), timeout=1.5)
    started = time.monotonic()
    rec = run_backend(backend, steps=4, timeout=20)
    took = time.monotonic() - started
    assert rec.failed.reason == "timeout", rec.trace()
    assert "did not finish within 1.5 s" in rec.failed.message and "Fix:" in rec.failed.message
    assert took < 6, took
    deadline = time.monotonic() + 5
    while not waiting.returned and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.returned  # the remote run was stopped, not left waiting a minute


def test_a_silent_remote_times_out(serve):
    release = threading.Event()
    try:
        rec = run_backend(gradio_backend(serve(hanging_app(release)), timeout=1.0), timeout=20)
        assert rec.failed.reason == "timeout", rec.trace()
    finally:
        release.set()


@pytest.mark.slow
def test_the_app_killed_mid_run_fails_the_run_and_the_next_run_reconnects(
    subprocess_remote,
):
    url, process = subprocess_remote(step_seconds=0.2)
    port = int(url.rsplit(":", 1)[1])
    backend = gradio_backend(url, timeout=60)
    request = validate_request(build_request(backend, {"prompt": "fox", "steps": 40}), backend)
    events, killed_at = [], None
    for event in backend.generate(request, RunControl()):
        events.append(event)
        if isinstance(event, Step) and event.step == 3:
            process.kill()  # SIGKILL: no goodbye on the event stream
            killed_at = time.monotonic()
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.reason == "unavailable", events[-1]
    assert "dropped during the run" in failed.message and "Fix:" in failed.message
    assert time.monotonic() - killed_at < 5
    back = preview_app(CountingBackend()).queue()  # the app is back, on the same address
    launch_loopback(back, port)
    try:
        again = list(backend.generate(request.model_copy(update={"steps": 3}), RunControl()))
        assert isinstance(again[-1], Finished), again[-1]
    finally:
        back.close()


# --- configuration and garbage ----------------------------------------------------------------


def test_an_unknown_api_name_names_the_endpoints_there_are(serve):
    url = serve(preview_app(CountingBackend()))
    state = last_state(gradio_backend(url, api_name="nope"))
    expect_error(state, "unavailable", "has no API endpoint '/nope'", "/generate")


def test_an_app_without_an_image_output_says_so(serve):
    with gr.Blocks() as app:
        gr.Button().click(lambda p: p, gr.Textbox(label="Prompt"), gr.Textbox(), api_name="echo")
    state = last_state(gradio_backend(serve(app)))
    expect_error(state, "unavailable", "no API endpoint with an image", "/echo", "options.api_name")


def test_a_preview_that_is_not_an_image_fails_the_run_and_stops_the_remote(serve):
    stopped = threading.Event()

    def broken(prompt: str):
        try:
            garbage = "data:image/jpeg;base64,Zm9v"  # base64 of "foo"
            yield RunState(status="running", step=1, total_steps=50, preview=garbage)
            # at once a step without a preview: the garbage is the newest preview of a burst
            yield RunState(status="running", step=2, total_steps=50)
            for step in range(3, 50):  # goes on, as a generation would, until closed
                time.sleep(0.2)
                yield RunState(status="running", step=step, total_steps=50)
        finally:
            stopped.set()

    with gr.Blocks() as app:
        out = DiffusionPreview()
        gr.Button().click(broken, gr.Textbox(label="Prompt"), out, api_name="generate")
    backend = gradio_backend(serve(app))
    rec = run_backend(backend, timeout=20)
    assert rec.failed is not None and rec.failed.reason == "remote_error", rec.trace()
    assert "sent a preview that is not an image" in rec.failed.message
    assert stopped.wait(5)  # the remote handler was closed


def test_a_file_that_is_not_an_image_fails_the_run(serve, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    with gr.Blocks() as app:
        gr.Button().click(
            lambda p: str(text), gr.Textbox(label="Prompt"), gr.File(), api_name="file"
        )
    backend = gradio_backend(serve(app), api_name="/file", output=0)
    rec = run_backend(backend)
    assert rec.failed.reason == "remote_error", rec.trace()
    assert "not an image" in rec.failed.message and "options.output" in rec.failed.message


def test_a_file_sent_empty_while_the_app_rewrites_it_is_fetched_again():
    """Gradio writes a cached file again, truncated first, each time the same image is saved:
    an app making one image twice at once can send it empty (seen here in a suite run, two
    test apps making the same picture). The file is fetched once more."""
    png = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), (200, 30, 7)).save(png, "PNG")
    answers = iter([b"", png.getvalue()])
    asked: list[str] = []

    def fetch(file: dict) -> bytes:
        asked.append(file["path"])
        return next(answers)

    [image] = final_images({"path": "/tmp/gradio/c0ffee/image.png"}, fetch, "of backend 'space'")
    assert image.size == (8, 8) and image.getpixel((0, 0)) == (200, 30, 7)
    assert asked == ["/tmp/gradio/c0ffee/image.png"] * 2


def test_a_file_that_reads_as_no_image_twice_is_named_with_its_size():
    with pytest.raises(RemoteFailure) as failed:
        final_images({"path": "/tmp/gradio/c0ffee/image.png"}, lambda file: b"", "of 'space'")
    assert failed.value.reason == "remote_error"
    assert "sent a file that is not an image, twice: 'image.png' (0 bytes)" in str(failed.value)
    assert "options.output" in str(failed.value)


def test_a_value_that_is_not_a_diffusion_preview_state_fails_the_run(serve):
    with gr.Blocks() as app:
        gr.Button().click(lambda p: p, gr.Textbox(label="Prompt"), gr.Textbox(), api_name="echo")
    backend = gradio_backend(serve(app), api_name="/echo", output=0, mode="preview")
    rec = run_backend(backend, steps=3)
    assert rec.failed.reason == "remote_error", rec.trace()
    assert "not a DiffusionPreview state" in rec.failed.message


# --- a Gradio 7 app -------------------------------------------------------------------------------


@pytest.fixture
def gradio7_app(serve):
    """A loopback server answering /config and /gradio_api/info as a Gradio 7 app would: a real
    app's answers, with the protocol ("sse_v4") and version of Gradio 7."""
    real = serve(image_app())
    config = httpx.get(real + "config").json()
    info = httpx.get(real + "gradio_api/info", params={"serialize": "False"}).json()
    config.update(protocol="sse_v4", version="7.0.0")
    answers = {"/config": config, "/gradio_api/info": info}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            body = answers.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {"detail": "Not Found"}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_gradio_7_app_is_a_clear_error_naming_the_versions_and_the_fix(gradio7_app):
    from gradio_client import __version__ as client_version

    state = last_state(gradio_backend(gradio7_app))
    expect_error(
        state,
        "unavailable",
        "sse_v4",
        "Gradio 7.0.0",
        f"gradio_client {client_version}",
        "pip install",
    )


# --- the local side -------------------------------------------------------------------------------


def test_a_failed_remote_run_releases_the_local_slot_for_the_next_run(serve):
    waiting = WaitingBackend(waits=[(Status("generating"), 60.0)])
    stalling = gradio_backend(serve(preview_app(waiting)), timeout=1.0)
    working = gradio_backend(serve(preview_app(CountingBackend())))
    backends = {"stalling": stalling, "working": working}

    def generate(which: str):
        yield from stream(backends[which], prompt="a red fox", steps=3)

    with gr.Blocks() as local:
        which = gr.Dropdown(list(backends), value="working", label="Backend")
        out = DiffusionPreview()
        gr.Button().click(generate, which, out, api_name="generate", concurrency_limit=1)
    client = Client(serve(local), verbose=False, download_files=False, token=False)
    failed = final_state(client.submit("stalling", api_name="/generate"))
    assert failed["status"] == "error" and failed["reason"] == "timeout", failed
    done = client.submit("working", api_name="/generate").result(timeout=30)
    assert done["status"] == "done" and done["images"], done


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("'No faces, please.'", "No faces, please."),  # Gradio 4.44: repr of the gr.Error text
        ('"It\'s too dark."', "It's too dark."),
        ("'Line\\nbreak'", "Line\nbreak"),
        ("No faces, please.", "No faces, please."),  # Gradio 5 and 6: the text itself
        ("'half quoted", "'half quoted"),
    ],
)
def test_an_apps_error_reads_as_the_app_wrote_it_on_every_gradio(sent, shown):
    from gradio_client.exceptions import AppError

    failure = classify(AppError(sent), "'space'")
    assert failure.message == f"The Gradio app 'space' failed: {shown}"
    assert failure.reason == "remote_error"
