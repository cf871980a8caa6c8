"""The docs' code runs as shown (issue 24): a Python block under ``<!-- runs -->`` in any page
of docs/ is run as it is written, in a fresh namespace, and must not raise; a console session
under ``<!-- console runs -->`` runs command by command and prints what it shows. (Blocks under
``<!-- excerpt: path -->`` are the examples' real code, held to it by test_plugin_docs.py.)"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = re.compile(r"<!-- runs -->\n```python\n(.*?)\n```", flags=re.S)


def marked_blocks(marker: re.Pattern = RUNS) -> list[tuple[str, int, str]]:
    """(page, line, block) of every block of docs/ that ``marker`` finds."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text()
        for match in marker.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((str(page.relative_to(ROOT)), line, match.group(1)))
    return found


def runnable_blocks() -> list[tuple[str, int, str]]:
    """(page, line, code) of every Python block marked to run."""
    return marked_blocks(RUNS)


def test_the_docs_mark_code_to_run():
    assert any(page == "docs/plugins.md" for page, _, _ in runnable_blocks())


@pytest.mark.parametrize(("page", "line", "code"), runnable_blocks(), ids=lambda v: str(v)[:40])
def test_a_marked_block_runs_as_shown(page, line, code, capsys):
    # dont_inherit: the block runs as pasted into a file, without this module's
    # `from __future__ import annotations` (which left a pydantic model's fields unresolved)
    exec(compile(code, f"{page}:{line}", "exec", dont_inherit=True), {"__name__": "docs_block"})
    assert capsys.readouterr().out, f"{page}:{line} printed nothing"


CONSOLE = re.compile(r"<!-- console runs -->\n```console\n(.*?)\n```", flags=re.S)


def console_blocks() -> list[tuple[str, int, str]]:
    """(page, line, block) of every console session marked to run."""
    return marked_blocks(CONSOLE)


def session_steps(block: str) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` for each ``$ `` command of a console block; a
    command goes on over the next lines until its quotes close, as in a shell."""
    steps: list[tuple[str, list[str]]] = []
    lines = block.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        assert line.startswith("$ "), f"output before any command: {line!r}"
        command = line[2:]
        index += 1
        while not _complete(command):
            command += "\n" + lines[index]
            index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        steps.append((command, output))
    return steps


def _complete(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # an open quote
        return False
    return True


@pytest.mark.parametrize(("page", "line", "block"), console_blocks(), ids=lambda v: str(v)[:40])
def test_a_marked_console_session_runs_as_shown(page, line, block, tmp_path):
    """Each command runs in bash, in a fresh folder (``cd`` carries over, as in a terminal), with
    this Python first on the PATH, and prints exactly the lines shown under it. A command ending
    in ``&`` runs in the background, as a server would; the session goes on once it printed the
    line shown (it prints it when it listens), and it is stopped at the end."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    cwd, background = tmp_path, []
    try:
        for command, expected in session_steps(block):
            where = f"{page}:{line}: $ {command.splitlines()[0]}"
            if command.startswith("cd "):
                cwd = cwd / command[3:].strip()
                assert cwd.is_dir(), where
            elif command.endswith("&"):
                server = subprocess.Popen(
                    ["bash", "-c", f"exec {command[:-1]}"],
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                background.append(server)
                shown = [server.stdout.readline().rstrip("\n") for _ in expected]
                assert shown == expected, where
            else:
                result = subprocess.run(
                    ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
                )
                assert result.returncode == 0, f"{where}\n{result.stderr}"
                assert result.stdout.splitlines() == expected, f"{where}\n{result.stderr}"
    finally:
        for server in background:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
