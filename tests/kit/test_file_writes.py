"""The no-files check's watch (``testing/file_writes.py``) charges a run with the files its own
code opens for writing, and not with what a library's import-time code writes when the run is
the first to import it: filelock 4.1 (what pip installs on Python 3.10) links a probe file in a
temporary folder when it is imported, and Gradio imported on a run's thread imports it, which
failed the example plugins' no-files check under Python 3.10 only."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from gradio_diffusion_preview.testing.file_writes import watch_writes

PROBING_MODULE = """
from pathlib import Path

PROBE = Path(__file__).with_name("import-time-probe")
PROBE.write_text("written by the module's import-time code")
"""


def test_a_librarys_import_time_write_is_not_the_runs_but_the_runs_own_write_is(
    tmp_path: Path, monkeypatch
):
    (tmp_path / "probing_library.py").write_text(PROBING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    preview = tmp_path / "preview.png"
    writes: list[str] = []
    try:
        with watch_writes(writes):
            module = importlib.import_module("probing_library")  # first import: the probe
            preview.write_bytes(b"a preview that belongs in memory")
    finally:
        sys.modules.pop("probing_library", None)
    assert module.PROBE.is_file()  # the import did write, on the watched thread
    assert writes == [str(preview)]
