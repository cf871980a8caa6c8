"""The plugin registry, through real entry points: the installed example plugin, and throwaway
distributions (a module plus a ``*.dist-info`` folder on ``sys.path``, which is all that
``importlib.metadata`` needs to discover an installed package)."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pluggy
import pytest

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    DiffusionPreview,
    Finished,
    ModelInfo,
    PreviewData,
    Registry,
    Started,
    Step,
    hookimpl,
    list_plugins,
    stream,
)
from gradio_diffusion_preview.plugins import (
    ALLOW_LIST_VARIABLE,
    DEFAULT_PLUGINS,
    PluginLoadWarning,
    UnknownBackendError,
    reset_registry,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gdp-example-plugin"
EXAMPLE_BACKEND = "example-fractal"


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``make_dist(name, source)``: a throwaway installed distribution whose module holds
    ``source`` and whose ``gradio_diffusion_preview`` entry point names that module."""
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates the import caches

    def _make(name: str, source: str, entry_point: str | None = None) -> str:
        module = name.replace("-", "_")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            f"[gradio_diffusion_preview]\n{entry_point or module} = {module}\n"
        )
        importlib.invalidate_caches()
        modules.append(module)
        return module

    yield _make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_LIST_VARIABLE, raising=False)


def plugin_module(backend_id: str, hook: str = "register_backends", then: str = "") -> str:
    """Source of a plugin module with one backend whose ``hook`` registers it, then runs
    the statement ``then``."""
    return textwrap.dedent(f"""
        from gradio_diffusion_preview import Backend, Capabilities, Finished, Started, hookimpl

        class ThrowawayBackend(Backend):
            id = {backend_id!r}
            display_name = "Throwaway"
            location = "local"
            capabilities = Capabilities(any_model=True)

            def generate(self, request, control):
                yield Started(total_steps=0, model="m", seeds=[0], width=64, height=64)
                yield Finished(images=[], seeds=[])

        @hookimpl
        def {hook}(register):
            register(ThrowawayBackend())
            {then}
    """)


class Toy(Backend):
    id = "toy"
    display_name = "Toy"
    location = "local"
    capabilities = Capabilities(min_size=16, default_size=(16, 16), guidance=False)

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id="toy-1")]

    def generate(self, request, control):
        yield Started(
            total_steps=request.steps,
            model=request.model,
            seeds=[request.seed],
            width=request.width,
            height=request.height,
            preview_size=(4, 4),
        )
        for step in range(1, request.steps + 1):
            yield Step(step, request.steps, np.zeros((4, 4, 3), np.uint8))
        import PIL.Image

        yield Finished([PIL.Image.new("RGB", (request.width, request.height))], [request.seed])


class OtherToy(Toy):
    id = "other-toy"


# --- the hook --------------------------------------------------------------------------------


def test_hook_register_backends():
    """A plugin's register_backends gets a callback; every backend it passes is registered
    under its id, attributed to the plugin; the hook's return value is ignored."""

    class TwoBackends:
        @hookimpl
        def register_backends(self, register):
            register(Toy())
            register(OtherToy())
            return "ignored"

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(TwoBackends(), "two", "gdp-two", "1.2.3")
    assert sorted(registry.backends()) == ["other-toy", "toy"]
    assert isinstance(registry.get("toy"), Toy)
    assert registry.plugins["two"].backends == ["toy", "other-toy"]
    [described] = registry.describe()
    assert described["distribution"] == "gdp-two" and described["version"] == "1.2.3"
    assert [b["id"] for b in described["backends"]] == ["toy", "other-toy"]
    assert described["backends"][0]["models"] == [
        {"id": "toy-1", "name": None, "description": "", "defaults": None}
    ]

    registry.remove_plugin("two")
    assert registry.backends() == {}


def test_add_backends_may_be_called_once_per_endpoint():
    """The backend pages show one ``add_backends(...)`` call per endpoint: a second call adds
    its backends (it crashed with pluggy's "Plugin name already registered"); a name given
    twice is refused with what to do."""
    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_backends(Toy())
    registry.add_backends(OtherToy())
    assert sorted(registry.backends()) == ["other-toy", "toy"]
    registry.add_backends(name="studio")
    with pytest.raises(ValueError, match="'studio' is already registered.*Fix: give another name"):
        registry.add_backends(name="studio")


def test_unknown_backend_error_lists_the_registered_ids():
    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(
        type(
            "P", (), {"register_backends": hookimpl(staticmethod(lambda register: register(Toy())))}
        )(),
        "p",
    )
    with pytest.raises(UnknownBackendError) as info:
        registry.get("nope")
    message = str(info.value)
    assert "No backend named 'nope'" in message and "toy" in message
    assert ALLOW_LIST_VARIABLE in message


def test_default_plugins_register_like_third_party_ones(no_allow_list):
    registry = Registry(load_entry_points=False)
    for module in DEFAULT_PLUGINS:
        info = registry.plugins[module]
        assert info.distribution == "gradio-diffusion-preview"
        assert info.version == importlib.metadata.version("gradio-diffusion-preview")
    assert "diffusers" in registry.backends()


# --- discovery through real entry points -----------------------------------------------------


def test_example_plugin_is_discovered_through_its_installed_entry_point(
    example_plugin, no_allow_list
):
    [entry_point] = [
        ep
        for ep in importlib.metadata.entry_points(group="gradio_diffusion_preview")
        if ep.name == "example"
    ]
    assert entry_point.dist.metadata["Name"] == "gdp-example-plugin"

    registry = Registry(default_plugins=())
    info = registry.plugins["example"]
    assert (info.distribution, info.version) == ("gdp-example-plugin", "0.1.0")
    backend = registry.get(EXAMPLE_BACKEND)
    assert type(backend).__module__ == "gdp_example_plugin.backend"
    assert info.backends == [EXAMPLE_BACKEND]


def test_example_plugin_uses_only_public_names():
    public = set(importlib.import_module("gradio_diffusion_preview").__all__)
    for path in (EXAMPLE / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("gradio_diffusion_preview") for a in node.names)
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and node.module.startswith("gradio_diffusion_preview")
            ):
                assert node.module == "gradio_diffusion_preview", f"{path}: {node.module}"
                names = {alias.name for alias in node.names}
                assert names <= public, f"{path} imports private {names - public}"


def test_list_plugins_reports_the_example_plugin_with_models(example_plugin, no_allow_list):
    reset_registry()
    try:
        plugins = {p["name"]: p for p in list_plugins()}
    finally:
        reset_registry()
    example = plugins["example"]
    assert example["version"] == "0.1.0"
    [backend] = example["backends"]
    assert backend["id"] == EXAMPLE_BACKEND and backend["location"] == "local"
    assert [m["id"] for m in backend["models"]] == ["mandelbrot", "julia"]
    assert backend["capabilities"]["finish_early"] is True
    assert set(backend["capabilities"]["options"]) == {"palette", "step_delay"}
    json.dumps(plugins)  # JSON-ready


def test_a_backend_whose_models_cannot_be_listed_shows_unavailable():
    class Offline(Toy):
        id = "offline"

        def models(self):
            raise ConnectionError("no network")

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(
        type(
            "P",
            (),
            {"register_backends": hookimpl(staticmethod(lambda register: register(Offline())))},
        )(),
        "p",
    )
    [plugin] = registry.describe()
    assert plugin["backends"][0]["models"] == (
        "unavailable: Backend 'offline' could not list its models: ConnectionError: no network"
    )
    assert "models" not in registry.describe(include_models=False)[0]["backends"][0]


def test_example_plugin_generates_through_the_component(example_plugin, no_allow_list):
    states = list(
        stream(
            EXAMPLE_BACKEND,
            registry=Registry(default_plugins=()),
            prompt="a lighthouse in a storm",
            model="julia",
            steps=6,
            width=64,
            height=96,
            seed=11,
            num_images=2,
            min_interval=0.0,
        )
    )
    last = states[-1]
    assert last.status == "done", last.message
    assert [s.step for s in states if s.status == "running"][-1] == 6
    assert any(s.preview and s.preview.startswith("data:image/") for s in states)
    assert last.seeds == [11, 12]
    assert [image.size for image in last.images] == [(64, 96), (64, 96)]

    data = DiffusionPreview().postprocess(last)
    assert isinstance(data, PreviewData)
    assert data.status == "done" and len(data.images) == 2
    assert all(Path(f.path).is_file() for f in data.images)


# --- the allow-list --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "loaded"),
    [
        (None, True),  # unset: every plugin
        ("", False),  # empty: no third-party plugin
        ("gdp-example-plugin", True),  # named
        ("  GDP_Example.Plugin , something-else", True),  # names are normalised
        ("something-else", False),  # others only
    ],
)
def test_allow_list_variable(example_plugin, monkeypatch, value, loaded):
    if value is None:
        monkeypatch.delenv(ALLOW_LIST_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(ALLOW_LIST_VARIABLE, value)
    registry = Registry()
    assert ("example" in registry.plugins) is loaded
    assert (EXAMPLE_BACKEND in registry.backends()) is loaded
    for module in DEFAULT_PLUGINS:  # built-in backends load whatever the list says
        assert module in registry.plugins


def test_allow_list_limits_throwaway_plugins_too(make_dist, monkeypatch, example_plugin):
    make_dist("gdp-alpha", plugin_module("alpha"))
    make_dist("gdp-beta", plugin_module("beta"))
    monkeypatch.setenv(ALLOW_LIST_VARIABLE, "gdp_beta")
    assert sorted(Registry(default_plugins=()).backends()) == ["beta"]
    monkeypatch.delenv(ALLOW_LIST_VARIABLE)
    assert {"alpha", "beta", EXAMPLE_BACKEND} <= set(Registry(default_plugins=()).backends())


# --- plugins that break --------------------------------------------------------------------


def test_duplicate_backend_ids_disable_only_the_second_naming_both_packages(
    make_dist, example_plugin, no_allow_list
):
    make_dist("gdp-copycat", plugin_module(EXAMPLE_BACKEND))
    registry = Registry(default_plugins=())
    with pytest.warns(PluginLoadWarning) as caught:
        backends = registry.backends()
    assert EXAMPLE_BACKEND in backends
    [message] = [str(w.message) for w in caught if "gdp-copycat" in str(w.message)]
    assert f"Backend id '{EXAMPLE_BACKEND}'" in message and "was disabled" in message
    assert "gdp-example-plugin" in message and ALLOW_LIST_VARIABLE in message
    assert registry.problems == [message]
    owner = next(p for p in registry.plugins.values() if EXAMPLE_BACKEND in p.backends)
    assert owner.distribution in ("gdp-example-plugin", "gdp-copycat")


def test_built_in_backends_keep_their_ids(make_dist, example_plugin, no_allow_list):
    make_dist("gdp-impostor", plugin_module("diffusers"))
    with pytest.warns(PluginLoadWarning, match="gdp-impostor"):
        registry = Registry()
        backends = registry.backends()
    assert type(backends["diffusers"]).__module__.startswith("gradio_diffusion_preview.")
    assert "diffusers" in registry.plugins[DEFAULT_PLUGINS[0]].backends


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning(
    make_dist, example_plugin, no_allow_list
):
    make_dist("gdp-broken-import", "raise ImportError('needs libfrobnicate')\n")
    with pytest.warns(PluginLoadWarning) as caught:
        registry = Registry(default_plugins=())
    [warning] = [w for w in caught if "gdp-broken-import" in str(w.message)]
    assert "failed to load" in str(warning.message)
    assert "ImportError: needs libfrobnicate" in str(warning.message)
    assert EXAMPLE_BACKEND in registry.backends()  # the rest still load


def test_a_plugin_that_raises_while_registering_is_skipped_with_a_warning(
    make_dist, example_plugin, no_allow_list
):
    make_dist(
        "gdp-broken-register", plugin_module("half", then="raise RuntimeError('no licence key')")
    )
    registry = Registry(default_plugins=())
    with pytest.warns(PluginLoadWarning) as caught:
        backends = registry.backends()
    [warning] = [str(w.message) for w in caught]
    assert "gdp_broken_register" in warning and "gdp-broken-register" in warning
    assert "raised in register_backends" in warning and "no licence key" in warning
    assert "half" not in backends  # what it registered before raising is dropped too
    assert EXAMPLE_BACKEND in backends
    assert registry.plugins["gdp_broken_register"].backends == []


def test_registering_something_that_is_not_a_backend_is_a_warning(make_dist, no_allow_list):
    make_dist(
        "gdp-not-a-backend",
        """
    from gradio_diffusion_preview import hookimpl

    @hookimpl
    def register_backends(register):
        register("diffusers-but-a-string")
    """,
    )
    registry = Registry(default_plugins=())
    with pytest.warns(
        PluginLoadWarning,
        match=r"takes a gradio_diffusion_preview\.Backend "
        r"instance, got str",
    ):
        registry.backends()


def test_a_misspelt_hook_fails_loudly(make_dist, no_allow_list):
    make_dist("gdp-typo", plugin_module("typo", hook="register_backend"))  # missing "s"
    with pytest.raises(pluggy.PluginValidationError) as info:
        Registry(default_plugins=())
    message = str(info.value)
    assert "unknown hook 'register_backend'" in message
    assert "gdp_typo" in message and "gdp-typo" in message
    assert "register_backends" in message  # the hook it meant


def test_a_misspelt_hook_in_a_plugin_added_in_code_fails_loudly():
    class Typo:
        @hookimpl
        def register_backend(self, register):
            register(Toy())

    registry = Registry(load_entry_points=False, default_plugins=())
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'register_backend'"):
        registry.add_plugin(Typo(), "typo")
    assert "typo" not in registry.plugins and registry.backends() == {}


def test_a_hook_with_a_wrong_argument_name_fails_loudly(make_dist, no_allow_list):
    make_dist(
        "gdp-wrong-arg",
        """
    from gradio_diffusion_preview import hookimpl

    @hookimpl
    def register_backends(registry):
        pass
    """,
    )
    with pytest.raises(pluggy.PluginValidationError, match="registry"):
        Registry(default_plugins=())


def test_two_packages_with_one_plugin_name_keep_the_first(make_dist, no_allow_list):
    make_dist("gdp-first", plugin_module("first"), entry_point="samename")
    make_dist("gdp-second", plugin_module("second"), entry_point="samename")
    with pytest.warns(PluginLoadWarning, match="already loaded from"):
        registry = Registry(default_plugins=())
    assert len({"first", "second"} & set(registry.backends())) == 1
