"""The docs' code runs as shown (issue 24): a Python block under ``<!-- runs -->`` in any page
of docs/ is run as it is written, in a fresh namespace, and must not raise. (Blocks under
``<!-- excerpt: path -->`` are the examples' real code, held to it by test_plugin_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = re.compile(r"<!-- runs -->\n```python\n(.*?)\n```", flags=re.S)


def runnable_blocks() -> list[tuple[str, int, str]]:
    """(page, line, code) of every block marked to run."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text()
        for match in RUNS.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((str(page.relative_to(ROOT)), line, match.group(1)))
    return found


def test_the_docs_mark_code_to_run():
    assert any(page == "docs/plugins.md" for page, _, _ in runnable_blocks())


@pytest.mark.parametrize(("page", "line", "code"), runnable_blocks(), ids=lambda v: str(v)[:40])
def test_a_marked_block_runs_as_shown(page, line, code, capsys):
    exec(compile(code, f"{page}:{line}", "exec"), {"__name__": "docs_block"})
    assert capsys.readouterr().out, f"{page}:{line} printed nothing"
