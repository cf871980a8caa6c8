"""A backend whose model listing fails refuses runs with one message: the backend, the cause as
it was written for people, exactly one "Fix:", one closing full stop, and no internal class name
(a ComfyUI server that is down, a remote Gradio app whose API cannot be mapped)."""

from __future__ import annotations

import re
import socket

import gradio as gr
import pytest
from fake_comfyui import comfy_backend
from remote_gradio_client import gradio_backend

from gradio_diffusion_preview import Backend, ModelListingError, stream
from gradio_diffusion_preview.backends.remote_failure import RemoteFailure
from gradio_diffusion_preview.request import BackendUnavailable, build_request, validate_request


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refusal(backend: Backend) -> str:
    with pytest.raises(BackendUnavailable) as error:
        validate_request(build_request(backend, {"prompt": "a fox"}), backend)
    return str(error.value)


def composed_once(message: str) -> None:
    assert message.count("Fix:") == 1, message
    assert ".." not in message and message.endswith("."), message
    assert not re.search(r"\b(RemoteFailure|ModelListingError)\b", message), message


def test_a_comfyui_server_that_is_down_is_one_message_with_one_fix():
    backend = comfy_backend(f"http://127.0.0.1:{closed_port()}", connect_timeout=2)
    message = refusal(backend)
    assert message.startswith("Backend 'studio' could not list its models: Cannot reach")
    composed_once(message)
    [state] = stream(backend, prompt="a fox")
    assert state.status == "error" and state.reason == "unavailable"
    composed_once(state.message)


def test_a_remote_gradio_app_that_cannot_be_mapped_is_one_message_with_one_fix(serve):
    with gr.Blocks() as app:
        gr.Button().click(lambda p: p, gr.Textbox(label="Prompt"), gr.Textbox(), api_name="echo")
    backend = gradio_backend(serve(app))
    message = refusal(backend)
    assert "could not list its models: The Gradio app" in message
    assert "no API endpoint with an image" in message and "options.api_name" in message
    composed_once(message)


class Broken(Backend):
    id, display_name, location = "broken", "Broken", "remote"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def models(self):
        raise self.error

    def generate(self, request, control):
        yield from ()


def test_a_plain_exception_keeps_its_type_and_gets_the_general_fix():
    message = refusal(Broken(ConnectionError("no network.")))
    assert message.startswith("Backend 'broken' could not list its models: ConnectionError: no")
    assert "then try again." in message
    composed_once(message)


def test_a_failure_written_for_people_is_given_as_written_with_its_reason():
    failure = RemoteFailure(
        "The service refused the token. Fix: set EXAMPLE_TOKEN.", "unauthorized"
    )
    backend = Broken(failure)
    with pytest.raises(ModelListingError) as error:
        backend.list_models()
    assert error.value.reason == "unauthorized"
    message = refusal(backend)
    assert message == (
        "Backend 'broken' could not list its models: The service refused the token. "
        "Fix: set EXAMPLE_TOKEN."
    )
