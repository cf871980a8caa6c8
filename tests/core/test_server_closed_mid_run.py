"""A server closed while a run streams (``Blocks.close()`` mid-run): the run leaves the registry
of runs, also when its visitor hung up just before (then nobody closes its states: the run
leaves when its backend's run ends). Steps are held at a gate, so the run is still going when
the server closes, whatever the machine's speed."""

from __future__ import annotations

import socket
import threading
import time

import gradio as gr
import httpx
import pytest
from testenv import launch_loopback
from toy_backends import CountingBackend, Gate

from gradio_diffusion_preview import DiffusionPreview, astream, stream
from gradio_diffusion_preview.run_handles import RUNS


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (the registry has no event to await) until true, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def read_until_generating(
    url: str,
    fn_index: int,
    session: str,
    seen: threading.Event,
    hang_up: threading.Event,
    leave: threading.Event,
) -> None:
    """Join the queue and read its stream until the server goes away, or until ``hang_up``
    once the run streams (a visitor who closes the tab just before the server closes: at the
    next message), or ``leave`` (at once). The stream is read from a plain socket with a short
    timeout, so the visitor can leave between two messages: a visitor still connected keeps
    the server's close waiting (uvicorn lets open streams finish, up to Gradio's 5 s), so the
    test lets it leave once it has seen what the close did to the run."""
    try:
        httpx.post(
            f"{url.rstrip('/')}/gradio_api/queue/join",
            json={"data": [], "fn_index": fn_index, "session_hash": session},
            timeout=60,
        ).raise_for_status()
    except httpx.HTTPError:
        return  # the server closed under it
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port), timeout=60) as sock:
        sock.sendall(
            f"GET /gradio_api/queue/data?session_hash={session} HTTP/1.1\r\n"
            f"Host: {address.host}:{address.port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        sock.settimeout(0.05)
        received = b""
        while not leave.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # the server closed under it
            if not chunk:
                return
            received += chunk
            *lines, received = received.split(b"\n")
            for line in lines:
                if line.startswith(b"data:") and b"process_generating" in line:
                    seen.set()
                if seen.is_set() and hang_up.is_set():
                    return


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
    url = launch_loopback(app)
    before = RUNS.ids()
    closing = threading.Thread(target=app.close)
    seen, hang_up, leave = threading.Event(), threading.Event(), threading.Event()
    try:
        config = httpx.get(f"{url.rstrip('/')}/config").json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "generate")
        reader = threading.Thread(
            target=read_until_generating,
            args=(url, fn, "closing", seen, hang_up, leave),
            daemon=True,
        )
        reader.start()
        gate.release(2)
        wait_for(lambda: backend.steps_run >= 2 and seen.is_set(), "two steps streamed")
        [run_id] = RUNS.ids() - before
        if hang_up_first:
            hang_up.set()
            gate.release(1)  # one more frame: the reader sees it and hangs up
            reader.join(30)
        else:
            # The server closes while its visitor is still connected: the run leaves the
            # registry then; the visitor leaves after, so the close need not wait for it.
            closing.start()
            wait_for(lambda: run_id not in RUNS.ids(), "the close to end the run")
            leave.set()
            reader.join(30)
    finally:
        leave.set()
        if closing.ident is None:
            closing.start()
        closing.join(30)
    if hang_up_first:
        # Nobody closes the states of a visitor who hung up just before the server closed
        # (Gradio's clean-up of the dropped connection never ran): the run ends with its
        # backend's run, and must not stay registered after it.
        gate.open()
    else:
        assert backend.steps_run < 400, "the close stopped the run"
    wait_for(lambda: run_id not in RUNS.ids(), "the run to leave the registry")
    wait_for(lambda: backend.runs_ended == 1, "the backend's run to end")
