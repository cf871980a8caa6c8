"""Meta-tests that keep the plugin API honest (after datasette's): every hook is documented in
docs/plugins.md with its exact signature, every hook has a test, the events, models and
availability are documented with their exact fields, every failure reason, phase, availability
state and capability is in the guide, and the guide's code is the examples' real code."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pluggy
import pytest
from pydantic_core import PydanticUndefined

import gradio_diffusion_preview as gdp
from gradio_diffusion_preview import events, hookspecs, testing
from gradio_diffusion_preview.backend import Capabilities

RECORDS = ("Started", "Step", "Status", "ImageReady", "Finished", "Failed", "ModelInfo")
RECORDS += ("ModelDefaults",)
RECORDS += ("Availability",)
"""The exported types a plugin constructs: their fields are documented exactly."""

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"


def hook_names() -> list[str]:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    return [name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name)]


def signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in hookspecs.py."""
    sig = inspect.signature(getattr(hookspecs, name))  # annotations stay strings
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def documented_signature(cls: type) -> str:
    """``Name(field: Type = default, ...)``, with each annotation as written in the source."""
    if dataclasses.is_dataclass(cls):
        fields = [(f.name, f.default, f.default_factory) for f in dataclasses.fields(cls)]
    else:
        fields = [(n, f.default, f.default_factory) for n, f in cls.model_fields.items()]
    annotations: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        annotations.update(klass.__dict__.get("__annotations__", {}))
    parts = []
    for name, default, factory in fields:
        part = f"{name}: {annotations[name]}"
        if factory not in (None, dataclasses.MISSING):
            part += f" = {factory()!r}"
        elif default is not dataclasses.MISSING and default is not PydanticUndefined:
            part += f" = {default!r}"
        parts.append(part)
    return f"{cls.__name__}({', '.join(parts)})"


def test_there_are_hooks():
    assert hook_names() == ["register_backends"]


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hooks_are_documented(hook):
    guide = GUIDE.read_text()
    assert f"### `{hook}`" in guide, f"docs/plugins.md has no section for the hook {hook}"
    assert signature(hook) in guide, f"docs/plugins.md lacks the signature {signature(hook)}"
    assert inspect.getdoc(getattr(hookspecs, hook)) in guide


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hooks_have_tests(hook):
    tests = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        tests |= {
            node.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef)
        }
    assert any(name.startswith(f"test_hook_{hook}") for name in tests), (
        f"no test named test_hook_{hook}... in tests/"
    )


def test_every_conformance_check_is_documented():
    guide = GUIDE.read_text()
    for check in testing.CHECKS:
        what = " ".join(inspect.getdoc(getattr(testing, f"check_{check}")).split())
        assert f"| `check_{check}` | {what} |" in guide, (
            f"check_{check} is missing from the table, or its row is not its docstring"
        )
    for name in ("check_backend", "BackendConformanceTests", "ConformanceError", "failing_request"):
        assert name in guide


def test_the_guides_code_is_the_examples_code():
    """A block under ``<!-- excerpt: path -->`` must appear verbatim in that file."""
    excerpts = re.findall(
        r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)\n```", GUIDE.read_text(), flags=re.S
    )
    assert len(excerpts) >= 10
    for path, block in excerpts:
        assert block in (ROOT / path).read_text(), f"docs/plugins.md is out of date with {path}"
    shown = {path for path, _ in excerpts}
    assert {
        "backend/gradio_diffusion_preview/examples/http-image-service/http_image_backend.py",
        "backend/gradio_diffusion_preview/examples/http-image-service/test_http_image_backend.py",
    } <= shown, "the backend without previews and its server fixture are shown as real code"


@pytest.mark.parametrize("name", RECORDS)
def test_events_models_and_availability_are_documented_with_their_fields(name):
    signature = documented_signature(getattr(gdp, name))
    assert signature in GUIDE.read_text(), f"docs/plugins.md lacks the signature {signature}"


def test_every_reason_phase_state_and_capability_is_documented():
    guide = GUIDE.read_text()
    for reason in events.FAILURE_REASONS:
        assert f"| `{reason}` |" in guide, f"failure reason {reason} is not in the table"
    for phase in events.PHASES:
        assert f"`{phase}`" in guide, f"the phase {phase} is not documented"
    states = gdp.Availability.model_fields["state"].annotation.__args__
    for state in states:
        assert f"| `{state}` |" in guide, f"availability state {state} is not in the table"
    for name in Capabilities.model_fields:
        assert f"| `{name}` |" in guide, f"the capability {name} is not in the table"


def test_the_guide_documents_the_allow_list_and_the_cli():
    guide = GUIDE.read_text()
    assert "DIFFUSION_PREVIEW_PLUGINS" in guide
    assert "python -m gradio_diffusion_preview plugins --json" in guide
    assert "`gradio_diffusion_preview` entry-point group" in guide


def test_every_field_of_the_value_is_in_the_component_reference():
    from gradio_diffusion_preview.state import PreviewData

    reference = (ROOT / "docs" / "component.md").read_text()
    table = reference[reference.index("### The value (`PreviewData`") :]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    missing = set(PreviewData.model_fields) - documented
    assert not missing, f"docs/component.md's value table lacks {sorted(missing)}"
