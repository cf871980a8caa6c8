"""Gradio's cancel route (``POST /gradio_api/cancel``) cancels an event only for its own session.

Gradio closes the running generator of whatever ``event_id`` is posted, from any session; an app
with a ``DiffusionPreview`` guards the route (``cancel_guard``). Two clients on a real app: a
second client posting the victim's event id from its own session does not stop the run; the
owner's own cancel (gradio_client's ``job.cancel()``) still does. Checked for an app launched
as is, one rendered into a bigger Blocks (as the demo's tabs are) and one mounted into FastAPI.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from remote_gradio_apps import preview_app
from testenv import free_port
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview, stream
from gradio_diffusion_preview.app_guards import guard_app

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
STEPS = 40


def wait_for(condition, what: str, limit: float = 60.0) -> None:
    """Poll ``condition`` until true; the limit only keeps a broken run from hanging the test."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def generate_fn_index(client: Client) -> int:
    return next(d["id"] for d in client.config["dependencies"] if d.get("api_name") == "generate")


def start_run(client: Client, counting: CountingBackend):
    """A run of ``STEPS`` steps, held at its backend's gate after its second step."""
    before = counting.steps_run
    job = client.submit("fox", "", "flat", STEPS, 7.5, 1, 64, 64, 1, api_name="/generate")
    counting.gate.release(2)
    wait_for(lambda: counting.steps_run >= before + 2, "the run's second step")
    wait_for(lambda: job.communicator.event_id is not None, "the event id")
    return job


def post_cancel(url: str, session_hash: str, fn_index: int, event_id: str) -> httpx.Response:
    body = {"session_hash": session_hash, "fn_index": fn_index, "event_id": event_id}
    return httpx.post(url.rstrip("/") + "/gradio_api/cancel", json=body, timeout=30)


def check_stolen_id_fails_and_owner_succeeds(url: str, counting: CountingBackend) -> None:
    victim = Client(url, verbose=False, download_files=False)
    fn_index = generate_fn_index(victim)
    job = start_run(victim, counting)
    stolen = job.communicator.event_id
    thief_session = str(uuid.uuid4())  # another visitor: their own session
    answer = post_cancel(url, thief_session, fn_index, stolen)
    assert answer.status_code == 200 and answer.json() == {"success": True}
    # the rest of the run, one step at a time: a cancel that had got through stops it
    for _ in range(STEPS - 2):
        made = counting.steps_run
        counting.gate.release()
        wait_for(lambda made=made: counting.steps_run > made or job.done(), "the next step")
    final = job.result(timeout=120)
    assert final["status"] == "done" and final["step"] == STEPS, final
    assert counting.steps_run % STEPS == 0  # every step of the victim's run was made

    # The owner's own cancel still stops its run within a step: steps let through after it
    # are not taken, and the backend's run ends (held at the gate, a run going on would not).
    ended = counting.runs_ended
    owned = start_run(victim, counting)
    owned.cancel()
    wait_for(owned.done, "the cancelled job to end")
    at_end = counting.steps_run
    counting.gate.release(5)
    wait_for(lambda: counting.runs_ended > ended, "the cancelled run's backend to return")
    assert counting.steps_run - at_end <= 1
    assert counting.steps_run < 2 * STEPS
    victim.close()


def test_a_stolen_event_id_cannot_cancel_another_sessions_run(serve):
    counting = CountingBackend(gate=Gate())
    check_stolen_id_fails_and_owner_succeeds(serve(preview_app(counting)), counting)


def test_the_guard_holds_for_a_preview_rendered_into_a_bigger_blocks(serve):
    counting = CountingBackend(gate=Gate())
    inner = preview_app(counting)
    with gr.Blocks() as outer, gr.Tab("Generate"):
        inner.render()
    check_stolen_id_fails_and_owner_succeeds(serve(outer), counting)


def test_a_cancel_during_the_handlers_first_iteration_stops_the_run(serve):
    """Gradio closes a generator only once its iterator is registered for the event, after its
    first ``next()`` returns; a first iteration still going (here held, as a busy machine can
    hold it) when the owner's cancel comes is not closed, and its run went on, held by nothing.
    The guard stops the event's runs itself."""
    counting = CountingBackend(gate=Gate())
    first_held = threading.Event()

    def generate(prompt: str):
        states = stream(counting, prompt=prompt, steps=STEPS, width=64, height=64, seed=1)
        first = next(states)  # the run has started
        first_held.wait(120)
        yield first
        yield from states

    with gr.Blocks() as app:
        prompt, preview = gr.Textbox(), DiffusionPreview()
        gr.Button().click(generate, prompt, preview, api_name="generate")
    client = Client(serve(app), verbose=False, download_files=False)
    try:
        job = client.submit("fox", api_name="/generate")
        counting.gate.release(2)
        wait_for(lambda: counting.steps_run >= 2, "the run's second step")
        wait_for(lambda: job.communicator.event_id is not None, "the event id")
        job.cancel()
        wait_for(job.done, "the cancelled job to end")
        at_cancel = counting.steps_run
        counting.gate.release(5)  # a run going on would take these
        wait_for(lambda: counting.runs_ended == 1, "the cancelled run's backend to return")
        assert counting.steps_run - at_cancel <= 1
    finally:
        first_held.set()
        client.close()


@pytest.fixture
def mounted_url():
    """An app mounted into FastAPI with ``gr.mount_gradio_app``, guarded by ``guard_app``,
    served by uvicorn on loopback."""
    import fastapi
    import uvicorn

    counting = CountingBackend(gate=Gate())
    app = gr.mount_gradio_app(fastapi.FastAPI(), preview_app(counting).queue(), path="/studio")
    assert guard_app(app) == 1
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start")
    yield f"http://127.0.0.1:{port}/studio/", counting
    server.should_exit = True
    thread.join(30)


def test_the_guard_holds_for_an_app_mounted_into_fastapi(mounted_url):
    url, counting = mounted_url
    check_stolen_id_fails_and_owner_succeeds(url, counting)


def test_the_upstream_reports_reproduction_still_shows_the_bug_in_plain_gradio(monkeypatch):
    """The reproduction in docs/reliability.md, run as written: plain Gradio (no
    DiffusionPreview, so no guard) answers a stranger's cancel and stops the victim's run.
    When this fails, Gradio has fixed it: say so in the docs, and the guard can go.

    It runs in this process (a process of its own spent ~15 s importing Gradio again): the
    guards are installed only on an app with a ``DiffusionPreview`` in it
    (``app_guards.install_on_start``), and importing this package patches nothing in Gradio,
    so the script's plain Blocks is served by Gradio as it is."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    quoted = text.split("> ```python\n", 1)[1].split("> ```\n", 1)[0]
    script = "".join(line[2:] + "\n" for line in quoted.splitlines())
    monkeypatch.setenv("GRADIO_SERVER_PORT", str(free_port()))
    printed, namespace = io.StringIO(), {"__name__": "__main__"}
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(script, "reliability.md reproduction", "exec"), namespace)  # noqa: S102
    finally:
        if isinstance(namespace.get("demo"), gr.Blocks):
            namespace["demo"].close()  # already closed when the script ran to its end
    lines = printed.getvalue().splitlines()
    assert isinstance(namespace["demo"], gr.Blocks) and not any(
        isinstance(block, DiffusionPreview) for block in namespace["demo"].blocks.values()
    ), "the reproduction must be plain Gradio, with nothing of this package in its app"
    assert "{'success': True}" in lines, printed.getvalue()
    stopped = next(line for line in lines if line.startswith("the victim's run stopped at "))
    reached = int(stopped.removeprefix("the victim's run stopped at ").split()[0])
    assert reached < 100, printed.getvalue()
