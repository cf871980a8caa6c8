"""Meta-tests that keep the plugin API honest (after datasette's): every hook is documented in
docs/plugins.md with its exact signature, every hook has a test, and the guide's code is the
example plugin's real code."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pluggy
import pytest

from gradio_diffusion_preview import hookspecs, testing

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def hook_names() -> list[str]:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    return [name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name)]


def signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in hookspecs.py."""
    sig = inspect.signature(getattr(hookspecs, name))  # annotations stay strings
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


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
    for path in (ROOT / "tests").glob("test_*.py"):
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
        assert f"| `check_{check}` |" in guide, f"check_{check} is missing from the table"
    for name in ("check_backend", "BackendConformanceTests", "ConformanceError", "failing_request"):
        assert name in guide


def test_the_guides_code_is_the_example_plugins_code():
    """A block under ``<!-- excerpt: path -->`` must appear verbatim in that file."""
    excerpts = re.findall(
        r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)\n```", GUIDE.read_text(), flags=re.S
    )
    assert len(excerpts) >= 5
    for path, block in excerpts:
        assert block in (ROOT / path).read_text(), f"docs/plugins.md is out of date with {path}"


def test_the_guide_documents_the_allow_list_and_the_cli():
    guide = GUIDE.read_text()
    assert "DIFFUSION_PREVIEW_PLUGINS" in guide
    assert "python -m gradio_diffusion_preview plugins --json" in guide
    assert "`gradio_diffusion_preview` entry-point group" in guide
