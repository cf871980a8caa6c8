"""The remote backends' shared failure: ``RemoteFailure`` becomes the run's ``Failed`` event,
``public_url`` keeps secrets out of the addresses that messages name, and ``read_capped``
stops reading an answer that outgrows its limit."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from gradio_diffusion_preview.backends.capped_read import read_capped
from gradio_diffusion_preview.backends.remote_failure import RemoteFailure
from gradio_diffusion_preview.endpoints import public_url
from gradio_diffusion_preview.events import Failed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ann:pw-canary@host:7860/sd", "http://host:7860/sd"),
        ("https://ann@host/app", "https://host/app"),
        ("https://host/app?token=canary&x=1", "https://host/app"),
        ("http://host:7860/app#canary", "http://host:7860/app"),
        ("http://ann:pw@host?__sign=canary", "http://host"),
        ("http://127.0.0.1:7860", "http://127.0.0.1:7860"),
        ("https://Studio.example.org:8443/comfy/", "https://Studio.example.org:8443/comfy/"),
        ("http://ann:pw@[::1]:7860/sd", "http://[::1]:7860/sd"),
        ("owner/name", "owner/name"),
    ],
)
def test_public_url_drops_user_info_query_and_fragment_and_keeps_the_rest(url, shown):
    assert public_url(url) == shown
    assert "canary" not in public_url(url)


def test_a_remote_failure_is_the_runs_failed_event():
    failure = RemoteFailure("The app is busy. Fix: wait.", "busy", 30.0, status=503)
    assert str(failure) == failure.message == "The app is busy. Fix: wait."
    assert failure.status == 503
    assert failure.as_failed() == Failed("The app is busy. Fix: wait.", "busy", 30.0)
    plain = RemoteFailure("No such model.", "model_not_found")
    assert plain.retry_after is None and plain.status is None
    assert plain.as_failed() == Failed("No such model.", "model_not_found", None)


def _streamed(body: bytes, chunk: int = 10) -> httpx.Response:
    return httpx.Response(
        200, content=iter([body[i : i + chunk] for i in range(0, len(body), chunk)])
    )


def test_read_capped_reads_an_answer_within_the_limit_whole():
    assert read_capped(_streamed(b"x" * 100), 100, "too large") == b"x" * 100


def test_read_capped_stops_at_the_first_chunk_past_the_limit():
    with pytest.raises(RemoteFailure, match="^too large$") as raised:
        read_capped(_streamed(b"x" * 101), 100, "too large")
    assert raised.value.reason == "remote_error"


def test_the_shared_modules_import_no_http_client():
    code = (
        "import sys\n"
        "import gradio_diffusion_preview.backends.remote_failure\n"
        "import gradio_diffusion_preview.backends.capped_read\n"
        "heavy = {'httpx', 'gradio_client', 'websockets'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
