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


def composed_once(message: str, plain_type: str | None = None) -> None:
    """One "Fix:", one closing full stop, no class name of ours or of a client library's
    (``RemoteFailure``, httpx's ``ConnectError``); ``plain_type`` is the one allowed: a plain
    exception's type, when it is the only clue."""
    assert message.count("Fix:") == 1, message
    assert ".." not in message and message.endswith("."), message
    # A command before the "Fix:" would be a second fix, unlabelled (`serve run ...`).
    assert "`" not in message.partition("Fix:")[0], message
    named = set(re.findall(r"\b[A-Z]\w*(?:Error|Failure|Exception)\b", message))
    assert named <= {plain_type}, message


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
    composed_once(message, plain_type="ConnectionError")


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


# --- every built-in backend whose listing can fail ---------------------------------------------


def a1111_down() -> Backend:
    from fake_a1111 import make_backend

    return make_backend(f"http://127.0.0.1:{closed_port()}", connect_timeout=2)


def comfyui_down() -> Backend:
    return comfy_backend(f"http://127.0.0.1:{closed_port()}", connect_timeout=2)


def gradio_down() -> Backend:
    return gradio_backend(f"http://127.0.0.1:{closed_port()}/", timeout=5)


def ray_without_a_cluster(monkeypatch) -> Backend:
    """The ray backend when ``ray.init`` cannot reach a cluster (Ray itself retries for
    minutes before it gives up, so its failure is raised at once here)."""
    import ray

    from gradio_diffusion_preview.backends.ray.backend import RayBackend

    def unreachable(**_):
        raise ConnectionError("Could not find any running Ray instance at 10.0.0.9:6379")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", unreachable)
    return RayBackend.for_app("pool", id="ray-pool", address="10.0.0.9:6379")


def ray_hosting_a_comfyui_that_is_down() -> Backend:
    """The ray backend whose replicas host a ComfyUI backend that cannot list its models: the
    replica's own description (``BackendServer.describe``, as it crosses Ray) says why."""
    from gradio_diffusion_preview.backends.ray.backend import RayBackend
    from gradio_diffusion_preview.endpoints import Endpoint
    from gradio_diffusion_preview.serving.deployment import BackendServer

    down = Endpoint(id="comfyui", kind="comfyui", url=f"http://127.0.0.1:{closed_port()}")
    replica = BackendServer("comfyui", {"endpoint": down})
    backend = RayBackend.for_app("pool", id="ray-pool", options={"backend": "comfyui"})
    backend._learn(replica.describe())
    return backend


LISTING_FAILURES = {
    "a1111 down": lambda request: a1111_down(),
    "comfyui down": lambda request: comfyui_down(),
    "remote gradio down": lambda request: gradio_down(),
    "ray without a cluster": lambda request: ray_without_a_cluster(
        request.getfixturevalue("monkeypatch")
    ),
    "ray hosting a comfyui that is down": lambda request: ray_hosting_a_comfyui_that_is_down(),
}


@pytest.mark.parametrize("case", sorted(LISTING_FAILURES))
def test_every_built_in_listing_failure_is_one_message_with_one_fix(case, request):
    if case.startswith("ray"):
        pytest.importorskip(
            "ray", reason="the ray cases need the [ray] extra (not in the py310 tier)"
        )
    backend = LISTING_FAILURES[case](request)
    with pytest.raises(ModelListingError) as error:
        backend.list_models()
    message = refusal(backend)
    assert message == error.value.refusal()
    assert message.startswith(f"Backend '{backend.id}' could not list its models: "), message
    assert message.count("could not list its models") == 1, message
    composed_once(message)
    [state] = stream(backend, prompt="a fox")
    assert state.status == "error" and state.reason == "unavailable"
    assert state.message == message


def test_a_listing_error_raised_with_its_fix_apart_keeps_that_one_fix():
    message = refusal(Broken(ModelListingError("the service is down.", fix="start it.")))
    assert (
        message == "Backend 'broken' could not list its models: the service is down. Fix: start it."
    )
