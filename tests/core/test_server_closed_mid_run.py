"""A server closed while a run streams (``Blocks.close()`` mid-run): the run leaves the registry
of runs, also when its visitor hung up just before (then nobody closes its states: the run
leaves when its backend's run ends). Steps are held at a gate, so the run is still going when
the server closes, whatever the machine's speed."""

from __future__ import annotations

import json
import socket
import threading
import time

import gradio as gr
import httpx
import pytest
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview, astream, stream
from gradio_diffusion_preview.run_handles import RUNS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (the registry has no event to await) until true, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def read_until_generating(
    url: str, fn_index: int, session: str, seen: threading.Event, hang_up: threading.Event
) -> None:
    """Join the queue and read its stream until the server goes away, or until ``hang_up``
    once the run streams (a visitor who closes the tab just before the server closes)."""
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post(
                "/gradio_api/queue/join",
                json={"data": [], "fn_index": fn_index, "session_hash": session},
            ).raise_for_status()
            with http.stream(
                "GET", "/gradio_api/queue/data", params={"session_hash": session}
            ) as response:
                for line in response.iter_lines():
                    if (
                        line.startswith("data:")
                        and "process_generating" in json.loads(line[5:])["msg"]
                    ):
                        seen.set()
                    if seen.is_set() and hang_up.is_set():
                        return
    except httpx.HTTPError:
        pass  # the server closed under it


def handler(kind: str, backend: CountingBackend):
    """The app's event handler: a generator over ``stream``, or an async one over ``astream``."""
    if kind == "stream":

        def generate():
            yield from stream(backend, model="flat", prompt="p", steps=400)

        return generate

    async def agenerate():
        async for state in astream(backend, model="flat", prompt="p", steps=400):
            yield state

    return agenerate


@pytest.mark.parametrize("hang_up_first", [False, True], ids=["connected", "hung-up"])
@pytest.mark.parametrize("kind", ["stream", "astream"])
def test_a_server_closed_mid_run_stops_the_run_and_leaves_nothing_registered(kind, hang_up_first):
    gate = Gate()
    backend = CountingBackend(gate=gate)
    generate = handler(kind, backend)

    with gr.Blocks() as app:
        preview = DiffusionPreview()
        gr.Button().click(generate, None, preview, api_name="generate")
    app.queue()
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    before = RUNS.ids()
    try:
        config = httpx.get(f"{url.rstrip('/')}/config").json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "generate")
        seen, hang_up = threading.Event(), threading.Event()
        reader = threading.Thread(
            target=read_until_generating, args=(url, fn, "closing", seen, hang_up), daemon=True
        )
        reader.start()
        gate.release(2)
        wait_for(lambda: backend.steps_run >= 2 and seen.is_set(), "two steps streamed")
        [run_id] = RUNS.ids() - before
        if hang_up_first:
            hang_up.set()
            gate.release(1)  # one more frame: the reader sees it and hangs up
            reader.join(30)
    finally:
        app.close()
    if hang_up_first:
        # Nobody closes the states of a visitor who hung up just before the server closed
        # (Gradio's clean-up of the dropped connection never ran): the run ends with its
        # backend's run, and must not stay registered after it.
        gate.open()
    else:
        assert backend.steps_run < 400, "the close stopped the run"
    wait_for(lambda: run_id not in RUNS.ids(), "the run to leave the registry")
    wait_for(lambda: backend.runs_ended == 1, "the backend's run to end")
