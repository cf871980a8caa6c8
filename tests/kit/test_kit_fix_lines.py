"""Every failure the conformance kit can raise says what the plugin's author changes: a
``fix:`` line (issue 24).

The kit raises its failures in three ways: ``fail_check(...)`` for a recorded run, the local
``fail(...)`` helpers of the identity and stream checks, and ``ConformanceError(...)`` itself
(a Status's problems are ``StatusProblem(...)`` records that carry their fix to
``fail_check``). This test reads every module of ``gradio_diffusion_preview.testing`` and
enumerates each such call: every one must pass ``fix=`` by keyword, and the value must be a
non-empty text (a literal, an f-string, each branch of a conditional) or a named constant of
the kit that is one. The helpers themselves must take ``fix`` without a default, so a new
failure written without one does not even run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import gradio_diffusion_preview.testing as kit
from gradio_diffusion_preview.testing.report import ConformanceError

KIT_DIR = Path(kit.__file__).parent
RAISERS = {"fail_check", "fail", "ConformanceError", "StatusProblem"}
"""The calls that make a failure of the kit (or a record of one)."""
HELPERS = {"fail_check", "fail"}
"""The helpers whose ``fix`` parameter must have no default."""


def call_name(call: ast.Call) -> str | None:
    """The name a call is made by: ``fail_check`` for ``fail_check(...)`` or ``x.fail_check()``."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def fix_problem(value: ast.expr, constants: dict[str, object]) -> str | None:
    """Why ``value``, given as ``fix=``, may not be a non-empty text; None when it is one."""
    if isinstance(value, ast.Constant):
        if not isinstance(value.value, str) or not value.value.strip():
            return f"fix={value.value!r}"
        return None
    if isinstance(value, ast.JoinedStr):
        literal = "".join(
            part.value for part in value.values if isinstance(part, ast.Constant)
        ).strip()
        return None if literal else "an f-string with no words of its own"
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        left, right = fix_problem(value.left, constants), fix_problem(value.right, constants)
        return left if left and right else None
    if isinstance(value, ast.IfExp):
        return fix_problem(value.body, constants) or fix_problem(value.orelse, constants)
    if isinstance(value, ast.Name):
        if value.id.isupper():  # a named constant of the kit: it must hold a text
            held = constants.get(value.id)
            if not isinstance(held, str) or not held.strip():
                return f"fix={value.id}, which is {held!r}"
        return None  # a parameter or local typed `str` by the helper it is passed to
    if isinstance(value, ast.Attribute):
        return None  # e.g. problem.fix, a StatusProblem's required field
    return f"fix={ast.unparse(value)}, which the test cannot read as a text"


def missing_fixes(source: str, constants: dict[str, object]) -> tuple[list[str], int]:
    """The failures in ``source`` that pass no real fix (``line N: why``), and how many
    failure calls it holds in all."""
    problems: list[str] = []
    calls = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node) in RAISERS:
            calls += 1
            fix = next((k.value for k in node.keywords if k.arg == "fix"), None)
            if fix is None:
                problems.append(f"line {node.lineno}: {call_name(node)}(...) passes no fix=")
            else:
                why = fix_problem(fix, constants)
                if why:
                    problems.append(f"line {node.lineno}: {call_name(node)}(...) passes {why}")
        if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = dict(
                zip(
                    [a.arg for a in positional[len(positional) - len(args.defaults) :]],
                    args.defaults,
                    strict=True,
                )
            )
            kw_defaults = {
                a.arg: d
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if d is not None
            }
            names = [a.arg for a in positional + args.kwonlyargs]
            if "fix" not in names:
                problems.append(f"line {node.lineno}: {node.name}() takes no fix")
            elif "fix" in defaults or "fix" in kw_defaults:
                problems.append(f"line {node.lineno}: {node.name}()'s fix has a default")
    return problems, calls


def kit_modules() -> list[Path]:
    return sorted(KIT_DIR.glob("*.py"))


@pytest.mark.parametrize("path", kit_modules(), ids=lambda p: p.name)
def test_every_failure_the_kit_raises_passes_a_fix(path: Path) -> None:
    module = importlib.import_module(f"gradio_diffusion_preview.testing.{path.stem}")
    problems, _ = missing_fixes(path.read_text(), vars(module))
    assert not problems, f"{path.name}: failures without a fix line:\n" + "\n".join(problems)


def test_the_enumeration_finds_every_check_modules_failures() -> None:
    """The scan sees the kit's failures where they are: each check module raises some, and
    there are as many as the kit has ways to fail (about a hundred)."""
    counts = {p.name: missing_fixes(p.read_text(), {})[1] for p in kit_modules()}
    for path in kit_modules():
        if path.name.startswith("checks_"):
            assert counts[path.name] >= 1, f"{path.name}: no failure calls found"
    assert sum(counts.values()) >= 90, counts


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("fail_check(rec, 'steps', 'a', 'b')", "passes no fix="),
        ("fail('a', 'b', fix=None)", "fix=None"),
        ("ConformanceError('x', 'c', 'a', 'b', fix='  ')", "fix='  '"),
        ("fail_check(rec, 'c', 'a', 'b', fix='do x' if ok else None)", "fix=None"),
        ("fail_check(rec, 'c', 'a', 'b', fix=f'{x}')", "no words of its own"),
        ("fail_check(rec, 'c', 'a', 'b', fix=NO_SUCH_FIX)", "fix=NO_SUCH_FIX, which is None"),
        ("StatusProblem('a', 'b')", "passes no fix="),
        ("def fail(expected, seen, fix=None): pass", "fix has a default"),
        ("def fail_check(rec, check, expected, seen, *, fix=''): pass", "fix has a default"),
        ("def fail(expected, seen): pass", "takes no fix"),
    ],
)
def test_the_enumeration_fails_a_failure_without_a_fix(source: str, why: str) -> None:
    problems, _ = missing_fixes(source, {})
    assert len(problems) == 1 and why in problems[0], problems


def test_a_kit_failure_shows_its_fix_as_a_line_of_the_message() -> None:
    error = ConformanceError("b", "steps", "x", "y", "Started(...)", fix="do z")
    assert str(error).splitlines()[1] == "    fix: do z"
