"""Run by every Python process the test suite starts (``tests/support/gradio_stubs.py`` puts
this folder first on ``PYTHONPATH``), before anything else: the process skips Gradio's stub
writer (see ``gradio_stubs``). Standard library only: the suite's Python 3.10 and 3.13 tiers
and the Gradio 5 apps' environment start with it too."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/support
try:
    from gradio_stubs import skip_stub_writing
finally:
    del sys.path[0]

skip_stub_writing()
