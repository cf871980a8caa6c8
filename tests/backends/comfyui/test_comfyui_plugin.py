"""The built-in ComfyUI plugin: one backend per configured endpoint (environment or file), one
that explains the setup when none is configured, the CLI showing which, and the whole glue
(``stream``) from a configured endpoint to the final image."""

from __future__ import annotations

import json

import pytest
from fake_comfyui import FakeComfyUI

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.comfyui.backend import ComfyUIBackend
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.endpoints import ENDPOINTS_FILE_VARIABLE
from gradio_diffusion_preview.plugins import ALLOW_LIST_VARIABLE, get_registry, reset_registry

URL_VARIABLE = "DIFFUSION_PREVIEW_COMFYUI_URL"


@pytest.fixture
def fresh_registry(monkeypatch):
    """Build the process-wide registry afresh from this test's environment."""
    monkeypatch.setenv(ALLOW_LIST_VARIABLE, "")  # the built-in plugins only
    for name in (URL_VARIABLE, ENDPOINTS_FILE_VARIABLE, "DIFFUSION_PREVIEW_COMFYUI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    reset_registry()

    def registry():
        reset_registry()
        return get_registry()

    yield registry
    reset_registry()


def test_without_configuration_one_backend_says_how_to_configure_it(fresh_registry, capsys):
    backend = fresh_registry().get("comfyui")
    availability = backend.availability()
    assert availability.state == "not_configured"
    assert URL_VARIABLE in availability.message and ENDPOINTS_FILE_VARIABLE in availability.message
    [state] = list(stream("comfyui", prompt="a fox"))
    assert state.status == "error" and URL_VARIABLE in state.message
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "  backend comfyui: ComfyUI (remote)\n" in out
    assert "    status:  not_configured: No ComfyUI server is configured. Fix: set" in out


def test_an_endpoint_in_the_environment_is_a_backend_that_streams_to_the_end(
    fresh_registry, monkeypatch, capsys
):
    with FakeComfyUI() as fake:
        monkeypatch.setenv(URL_VARIABLE, fake.url + "/")
        monkeypatch.setenv("DIFFUSION_PREVIEW_COMFYUI_TOKEN", "tok-canary")
        registry = fresh_registry()
        backend = registry.get("comfyui")
        assert backend.availability().usable and backend.display_name == "ComfyUI"
        states = list(
            stream("comfyui", prompt="a fox", steps=3, width=64, height=64, min_interval=0)
        )
        assert states[-1].status == "done" and states[-1].images[0].size == (64, 64)
        assert any(state.preview for state in states)
        assert [state.step for state in states if state.preview][-1] == 3
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert f"    endpoint: {fake.url}; token set\n" in out
        assert "sd15.safetensors, sdxl_base.safetensors" in out
        assert main(["plugins", "--json"]) == 0
        out = capsys.readouterr().out
        assert "canary" not in out and '"workflow": "built-in text-to-image"' in out
        backend.close()


def test_endpoints_in_a_file_are_one_backend_each_and_a_bad_one_is_explained(
    fresh_registry, monkeypatch, tmp_path
):
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}))
    file = tmp_path / "endpoints.json"
    file.write_text(
        json.dumps(
            {
                "endpoints": [
                    {"id": "studio", "kind": "comfyui", "url": "http://127.0.0.1:8188"},
                    {
                        "id": "custom",
                        "kind": "comfyui",
                        "url": "http://127.0.0.1:8189",
                        "options": {"workflow": str(flow), "inputs": {"prompt": "1.text"}},
                    },
                    {"id": "other", "kind": "a1111", "url": "http://127.0.0.1:7860"},
                ]
            }
        )
    )
    monkeypatch.setenv(ENDPOINTS_FILE_VARIABLE, str(file))
    backends = fresh_registry().backends()
    assert backends["studio"].availability().usable
    custom = backends["custom"].availability()
    assert custom.state == "not_configured" and "does not mark 'steps'" in custom.message
    assert "comfyui" not in backends  # endpoints are configured: no "how to configure" one
    assert not isinstance(backends["other"], ComfyUIBackend)  # the a1111 plugin's endpoint
    file.write_text("{not json")
    broken = fresh_registry().get("comfyui").availability()
    assert broken.state == "not_configured" and "is not valid json" in broken.message
