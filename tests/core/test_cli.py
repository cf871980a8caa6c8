"""`python -m gradio_diffusion_preview plugins [--json]`: what people and scripts see."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradio_diffusion_preview import Availability, Backend, hookimpl, list_plugins
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.plugins import ALLOW_LIST_VARIABLE, get_registry, reset_registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gdp-example-plugin"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
ENV.pop(ALLOW_LIST_VARIABLE, None)


@pytest.fixture
def registry(example_plugin, monkeypatch):
    """The process-wide registry, loaded fresh for the test and forgotten after it."""
    monkeypatch.delenv(ALLOW_LIST_VARIABLE, raising=False)
    reset_registry()
    yield get_registry()
    reset_registry()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradio_diffusion_preview", *args],
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=120,
    )


class Offline(Backend):
    id = "offline"
    display_name = "Needs a network"
    location = "remote"

    def models(self):
        raise ConnectionError("api.example.com unreachable")

    def generate(self, request, control):
        yield from ()


def plugin(hook):
    """A plugin object whose register_backends is ``hook``."""
    return type("Plugin", (), {"register_backends": hookimpl(staticmethod(hook))})()


# --- in-process ------------------------------------------------------------------------------


def test_plugins_prints_plugins_backends_models_and_capabilities(registry, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "gdp-example-plugin 0.1.0  [plugin: example]\n" in out
    assert "  backend example-fractal: Example: procedural fractals (local)\n" in out
    assert "    models:  mandelbrot, julia\n" in out
    assert "    can:     step_events, step_previews, seed, cancel, finish_early\n" in out
    assert "    cannot:  negative_prompt, guidance\n" in out
    assert "    size:    64-1024 px, multiples of 8, default 512x512\n" in out
    assert "    steps:   1-100, default 20; batch up to 4\n" in out
    assert (
        "    option:  palette: colours (default: picked by the prompt) [fire, forest, mono" in out
    )
    assert (
        "    option:  step_delay: seconds to wait after each step, to watch the preview "
        "form [0 to 5]" in out
    )
    version = importlib.metadata.version("gradio-diffusion-preview")
    assert f"gradio-diffusion-preview {version}  [plugin: " in out  # built-ins are plugins too


def test_plugins_json_is_the_data_list_plugins_returns(registry, capsys):
    assert main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(list_plugins()))


def test_no_models_skips_listing_models(registry, capsys):
    assert main(["plugins", "--no-models", "--json"]) == 0
    for entry in json.loads(capsys.readouterr().out):
        assert all("models" not in backend for backend in entry["backends"])


def test_models_that_cannot_be_listed_show_unavailable_instead_of_crashing(registry, capsys):
    registry.add_plugin(plugin(lambda register: register(Offline())), "offline", "gdp-offline")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "gdp-offline (version unknown)  [plugin: offline]\n" in out
    unavailable = (
        "unavailable: Backend 'offline' could not list its models: ConnectionError: "
        "api.example.com unreachable"
    )
    assert f"    models:  {unavailable}\n" in out
    assert main(["plugins", "--json"]) == 0
    [offline] = [p for p in json.loads(capsys.readouterr().out) if p["name"] == "offline"]
    assert offline["backends"][0]["models"] == unavailable


def test_a_plugin_that_breaks_is_a_problem_line_and_a_warning_with_json(registry, capsys):
    def broken(register):
        raise RuntimeError("no licence key")

    registry.add_plugin(plugin(broken), "broken", "gdp-broken")
    said = (
        "Plugin 'broken' (gdp-broken) raised in register_backends and was skipped: "
        "RuntimeError: no licence key\n"
    )
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert f"problem: {said}" in captured.out and "example-fractal" in captured.out
    assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"warning: {said}" in captured.err
    assert json.loads(captured.out)


def test_duplicate_backend_ids_disable_only_the_second_and_say_so(registry, capsys):
    from gdp_example_plugin.backend import FractalBackend

    class Other(Offline):
        id = "copy-own"

        def models(self):
            return []

    def copy(register):
        register(FractalBackend())
        register(Other())

    registry.add_plugin(plugin(copy), "copy", "gdp-copy")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert (
        "problem: Backend id 'example-fractal' from plugin 'copy' (package gdp-copy) was "
        "disabled: plugin 'example' (package gdp-example-plugin) already registered it." in out
    )
    assert "  backend copy-own:" in out  # the clashing plugin's other backend still loads


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "error: name a command, e.g. `python -m gradio_diffusion_preview plugins`"),
        (["plugin"], "error: argument COMMAND: invalid choice: 'plugin' (choose from plugins)"),
        (["plugins", "--jsn"], "error: unrecognized arguments: --jsn"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m gradio_diffusion_preview")
    assert says.replace("(choose from plugins)", "") in err


def test_help_exits_0(capsys):
    assert main(["plugins", "--help"]) == 0
    assert "DIFFUSION_PREVIEW_PLUGINS" in capsys.readouterr().out


# --- as a command ----------------------------------------------------------------------------


def test_python_m_plugins_json(example_plugin):
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    example = plugins["example"]
    assert (example["distribution"], example["version"]) == ("gdp-example-plugin", "0.1.0")
    [backend] = example["backends"]
    assert backend["id"] == "example-fractal"
    assert [m["id"] for m in backend["models"]] == ["mandelbrot", "julia"]
    assert backend["capabilities"]["default_size"] == [512, 512]
    assert any(p["distribution"] == "gradio-diffusion-preview" for p in plugins.values())


def test_console_script_prints_text_and_honours_the_allow_list(example_plugin):
    script = Path(sys.executable).with_name("gradio-diffusion-preview")
    if not script.exists():
        pytest.skip("the console script is installed by `pip install -e .` (make setup)")
    result = subprocess.run(
        [str(script), "plugins"],
        capture_output=True,
        text=True,
        env={**ENV, ALLOW_LIST_VARIABLE: ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "gdp-example-plugin" not in result.stdout
    assert "gradio-diffusion-preview " in result.stdout and "  backend diffusers: " in result.stdout


def test_a_remote_backends_endpoint_is_shown_without_its_secrets(registry, capsys):
    from gradio_diffusion_preview.endpoints import Endpoint

    endpoint = Endpoint(
        id="studio",
        kind="a1111",
        url="http://127.0.0.1:7861",
        username="ann",
        password="pw-canary",
        token="tok-canary",
    )

    class Remote(Offline):
        id = "studio"

        def models(self):
            return []

        def availability(self):
            return Availability(state="unavailable", message="Cannot reach http://127.0.0.1:7861.")

        def describe(self):
            return {**super().describe(), "endpoint": endpoint.public()}

    registry.add_backends(Remote(), name="remote")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "    endpoint: http://127.0.0.1:7861; user ann, password set; token set\n" in out
    assert "    status:  unavailable: Cannot reach http://127.0.0.1:7861.\n" in out
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr().out
    assert "canary" not in out and '"password": "set"' in out
