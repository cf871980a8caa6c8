"""The Python processes the tests start, and the test workers themselves, import Gradio without
rewriting its ``.pyi`` stubs (``tests/conftest.py`` calls ``start_processes_without_stubs``).

On every import, Gradio's ``ComponentMeta`` (``gradio/component_meta.py``) calls
``create_or_modify_pyi`` for each component class (81 of them): it reads the class's source
file, parses it with ``ast``, renders a jinja template and compares the result with the
``.pyi`` file beside it, rewriting that file where it differs. It only keeps the stubs in
Gradio's own folder in step with its sources (for an editor's type hints); nothing at run time
reads them. It is half of ``import gradio`` here: 2.0 CPU seconds with it, 1.1 s without.
A test run starts a Gradio process for each fake remote app, demo, Space, benchmark app and
test worker.

``start_processes_without_stubs`` puts ``tests/support/startup`` first on ``PYTHONPATH`` in the
process that starts pytest, before pytest-xdist starts its workers; the ``sitecustomize`` there
calls ``skip_stub_writing`` at the start of every Python process that inherits it. A process
started with its own ``PYTHONPATH`` or an environment of its own (the release check, the fresh
environments of the packaging and Space tests) writes the stubs as Gradio does, and so do the
demo, the Space and every app of a user run outside the tests.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

STARTUP = Path(__file__).with_name("startup")
"""The folder whose ``sitecustomize`` skips the stub writer in every process started with it."""
MODULE = "gradio.component_meta"
"""Gradio's module that defines ``create_or_modify_pyi`` and calls it for each component."""


def _no_stubs(*args: object, **kwargs: object) -> None:
    """Stands in for Gradio's ``create_or_modify_pyi``: writes no stub."""


class _StubWriterSkipper(MetaPathFinder):
    """Finds ``gradio.component_meta`` as Python would, and has its stub writer replaced as soon
    as the module has run (before ``gradio.components`` defines a class with it)."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # once: the module is imported once per process
        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module) -> None:
            run_module(module)
            if hasattr(module, "create_or_modify_pyi"):  # a Gradio without it: left as it is
                module.create_or_modify_pyi = _no_stubs

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writing() -> None:
    """Gradio, imported later in this process, writes no ``.pyi`` stubs. Where Gradio is
    already imported, nothing changes."""
    if MODULE in sys.modules:
        return
    if not any(isinstance(finder, _StubWriterSkipper) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StubWriterSkipper())


def start_processes_without_stubs() -> None:
    """Every process started from now on starts with ``STARTUP`` on its path (pytest-xdist's
    workers too), and this process skips the stubs itself (where it runs tests, with ``-n 0``)."""
    paths = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    if str(STARTUP) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(STARTUP), *paths])
    skip_stub_writing()
