"""The tests' own way to launch an app (``testenv.launch_loopback``) on a loaded machine: when
Gradio's 3-second self-check times out, the server it started still serves, and the test gets
it instead of an error (on a loaded CI machine this failed a whole module's fixture)."""

from __future__ import annotations

import gradio as gr
import httpx
import pytest
from testenv import launch_loopback


def test_a_launch_whose_self_check_timed_out_still_serves(monkeypatch):
    # what gradio.networking.url_ok answers when its first HEAD takes over 3 s
    monkeypatch.setattr(gr.networking, "url_ok", lambda url: False)
    with gr.Blocks() as app:
        gr.Markdown("served")
    app.queue()
    with pytest.raises(ValueError, match="localhost is not accessible"):
        app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    app.close()
    url = launch_loopback(app)
    try:
        assert httpx.get(f"{url.rstrip('/')}/config").status_code == 200
    finally:
        app.close()
