"""docs/component.md keeps up with DiffusionPreview: every constructor argument is named in its
reference section and every event has a row in its events table."""

from __future__ import annotations

import inspect
from pathlib import Path

from gradio_diffusion_preview import DiffusionPreview

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "component.md"


def test_every_constructor_argument_is_documented():
    text = REFERENCE.read_text()
    section = text[: text.index("### What it shows")]
    names = [name for name in inspect.signature(DiffusionPreview.__init__).parameters][1:]
    missing = [name for name in names if f"`{name}`" not in section]
    assert not missing, f"docs/component.md does not document the arguments {missing}"


def test_every_event_has_a_row_in_the_events_table():
    text = REFERENCE.read_text()
    table = text[text.index("### Events") :]
    missing = [str(e) for e in DiffusionPreview.EVENTS if f"| `{e}` |" not in table]
    assert not missing, f"docs/component.md's events table lacks {missing}"
