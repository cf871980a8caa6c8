"""Configuring the a1111 backend: one backend per endpoint, a clear "not configured" otherwise,
what the plugins CLI shows, and secrets kept out of everything printed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_a1111 import FakeA1111, make_backend

from gradio_diffusion_preview import Failed, GenerationRequest, RunControl, stream
from gradio_diffusion_preview.backends.a1111.backend import A1111Backend
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.endpoints import ENDPOINTS_FILE_VARIABLE, Endpoint, public_url
from gradio_diffusion_preview.plugins import ALLOW_LIST_VARIABLE, get_registry, reset_registry

VARIABLES = ("URL", "USER", "PASSWORD", "TOKEN")


@pytest.fixture
def environment(monkeypatch):
    """No endpoint configured and no third-party plugins; the registry reloads per test."""
    for name in VARIABLES:
        monkeypatch.delenv(f"DIFFUSION_PREVIEW_A1111_{name}", raising=False)
    monkeypatch.delenv(ENDPOINTS_FILE_VARIABLE, raising=False)
    monkeypatch.setenv(ALLOW_LIST_VARIABLE, "")
    reset_registry()
    yield monkeypatch
    reset_registry()


def a1111_backends() -> dict:
    return {
        bid: backend
        for bid, backend in get_registry().backends().items()
        if isinstance(backend, A1111Backend)
    }


def test_with_nothing_configured_one_backend_says_how_to_configure_it(environment, capsys):
    [backend] = a1111_backends().values()
    assert backend.id == "a1111"
    availability = backend.availability()
    assert availability.state == "not_configured"
    assert "DIFFUSION_PREVIEW_A1111_URL" in availability.message and "--api" in availability.message
    [state] = list(stream("a1111", prompt="a fox"))
    assert state.status == "error" and "DIFFUSION_PREVIEW_A1111_URL" in state.message
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "  backend a1111: AUTOMATIC1111 / Forge / SD.Next (remote)\n" in out
    assert "    status:  not_configured: No AUTOMATIC1111 / Forge / SD.Next server" in out


def test_an_endpoint_from_the_environment_is_shown_without_its_password(environment, capsys):
    fake = FakeA1111(auth=("ann", "pw-canary"))
    url = fake.start()
    try:
        environment.setenv("DIFFUSION_PREVIEW_A1111_URL", url)
        environment.setenv("DIFFUSION_PREVIEW_A1111_USER", "ann")
        environment.setenv("DIFFUSION_PREVIEW_A1111_PASSWORD", "pw-canary")
        [backend] = a1111_backends().values()
        assert backend.id == "a1111" and backend.availability().usable
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert f"    endpoint: {url}; user ann, password set; token not set\n" in out
        assert "    models:  v1-5-pruned-emaonly, anime_counterfeit-v3\n" in out
        assert "    option:  sampler: " in out
        assert main(["plugins", "--json"]) == 0
        out = capsys.readouterr().out
        assert "canary" not in out
        [entry] = [b for p in json.loads(out) for b in p["backends"] if b["id"] == "a1111"]
        assert entry["endpoint"]["password"] == "set" and entry["location"] == "remote"
    finally:
        fake.stop()


def test_each_endpoint_in_the_file_is_a_backend_and_a_wrong_one_says_why(environment, tmp_path):
    file = tmp_path / "endpoints.toml"
    file.write_text(
        '[[endpoints]]\nid = "studio"\nkind = "a1111"\nurl = "http://127.0.0.1:7860"\n'
        'models = ["v1-5-pruned-emaonly"]\n\n'
        '[[endpoints]]\nid = "forge-box"\nkind = "a1111"\nurl = "http://10.0.0.5:7860"\n'
        'options = { poll_interval = 0.5, sampler = "Euler a" }\n\n'
        '[[endpoints]]\nid = "typo"\nkind = "a1111"\nurl = "http://127.0.0.1:7861"\n'
        "options = { pol_interval = 0.5 }\n\n"
        '[[endpoints]]\nid = "comfy"\nkind = "comfyui"\nurl = "http://127.0.0.1:8188"\n'
    )
    environment.setenv(ENDPOINTS_FILE_VARIABLE, str(file))
    backends = a1111_backends()
    assert sorted(backends) == ["forge-box", "studio", "typo"]
    assert backends["forge-box"].settings.sampler == "Euler a"
    assert [m.id for m in backends["studio"].list_models()] == ["v1-5-pruned-emaonly"]
    typo = backends["typo"].availability()
    assert typo.state == "not_configured" and "unknown option 'pol_interval'" in typo.message


def test_a_broken_endpoints_file_is_shown_as_the_backends_state(environment, tmp_path):
    file = tmp_path / "endpoints.toml"
    file.write_text("not = [toml")
    environment.setenv(ENDPOINTS_FILE_VARIABLE, str(file))
    [backend] = a1111_backends().values()
    availability = backend.availability()
    assert availability.state == "not_configured" and "is not valid toml" in availability.message


def test_a_username_without_its_password_needs_the_password(environment):
    endpoint = Endpoint(
        id="studio", kind="a1111", url="http://127.0.0.1:1", username="ann", password_env="NOPE"
    )
    environment.delenv("NOPE", raising=False)
    backend = A1111Backend(endpoint)
    availability = backend.availability()
    assert availability.state == "needs_token" and "set NOPE" in availability.message
    [state] = list(stream(backend, prompt="a fox"))
    assert state.status == "error" and state.reason == "unauthorized"


def test_a_backend_that_cannot_run_fails_a_run_given_to_it_directly(environment):
    """App code calling generate() itself, past validation: one Failed event, no exception."""
    request = GenerationRequest(prompt="a fox", width=64, height=64, steps=4, seed=1)
    [failed] = list(A1111Backend().generate(request, RunControl()))
    assert isinstance(failed, Failed) and failed.reason == "unavailable"
    assert "DIFFUSION_PREVIEW_A1111_URL" in failed.message
    environment.delenv("NOPE", raising=False)
    endpoint = Endpoint(
        id="studio", kind="a1111", url="http://127.0.0.1:1", username="ann", password_env="NOPE"
    )
    [failed] = list(A1111Backend(endpoint).generate(request, RunControl()))
    assert failed.reason == "unauthorized" and "set NOPE" in failed.message


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"poll_interval": 0}, "poll_interval=0"),
        ({"previews": "yes"}, "previews='yes'"),
        ({"preview_every_n_steps": 40}, "1 to 32"),
        ({"sampler": ""}, "sampler=''"),
    ],
)
def test_wrong_endpoint_options_are_refused_in_code_with_the_fix(options, says):
    endpoint = Endpoint(id="studio", kind="a1111", url="http://127.0.0.1:1", options=options)
    with pytest.raises(ValueError, match="Fix:") as error:
        A1111Backend(endpoint)
    assert says in str(error.value)


def test_an_endpoint_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="kind 'a1111'"):
        A1111Backend(Endpoint(id="c", kind="comfyui", url="http://127.0.0.1:1"))


def test_credentials_in_the_url_never_show_in_messages():
    assert public_url("http://ann:pw@host:7860/sd") == "http://host:7860/sd"
    backend = make_backend("http://ann:pw-canary@127.0.0.1:1", models=["m"], connect_timeout=1)
    assert "canary" not in backend.display_name and "canary" not in backend.client.where


def test_the_loaded_checkpoint_is_listed_first_so_that_it_is_the_default():
    fake = FakeA1111()
    fake.opts["sd_model_checkpoint"] = fake.checkpoints[1]["title"]
    try:
        backend = make_backend(fake.start())
        models = backend.list_models()
        assert [m.id for m in models] == ["anime_counterfeit-v3", "v1-5-pruned-emaonly"]
        assert models[0].name == "anime/counterfeit-v3.safetensors [cbfba64e66]"
        assert backend.default_model() == "anime_counterfeit-v3"
        assert "/srv/" not in json.dumps([m.model_dump() for m in models])  # no server paths
    finally:
        fake.stop()


def test_importing_and_registering_the_backend_imports_no_httpx():
    code = (
        "import sys\n"
        "from gradio_diffusion_preview.backends.a1111 import plugin\n"
        "from gradio_diffusion_preview.backends.a1111.backend import A1111Backend\n"
        "from gradio_diffusion_preview.endpoints import Endpoint\n"
        "b = A1111Backend(Endpoint(id='s', kind='a1111', url='http://127.0.0.1:1'))\n"
        "b.availability(); b.describe()\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
