"""What a visitor reads when a run of the library's tabs fails (``controls.plain_error``): a slip
such as an empty prompt reads as one short sentence, a refused setting keeps its rule and fix
without the backend's name, and the owner's full message goes to the log."""

from __future__ import annotations

import logging

import pytest

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.controls import plain_error
from gradio_diffusion_preview.run_state import RunState


def refused(prompt: str, **fields) -> RunState:
    """The last state of a real run of the bundled model refused by the request validation."""
    from gradio_diffusion_preview.bundled.shapes import model_dir

    return list(stream("diffusers", model=str(model_dir()), prompt=prompt, **fields))[-1]


@pytest.mark.parametrize("prompt", ["", "   "])
def test_an_empty_prompt_reads_type_a_prompt_first(prompt, caplog):
    state = refused(prompt)
    assert state.status == "error" and "Invalid request for backend" in state.message
    with caplog.at_level(logging.WARNING, logger="gradio_diffusion_preview.controls"):
        shown = plain_error(state)
    assert shown.message == "Type a prompt first."
    assert "prompt=" in caplog.text and "Fix:" in caplog.text  # the owner's detail, logged


def test_a_refused_setting_keeps_its_rule_and_fix_without_the_backend(caplog):
    shown = plain_error(refused("a red circle", steps=100_000))
    assert shown.message.startswith("steps=100000 is not allowed")
    assert "Fix:" in shown.message and "diffusers" not in shown.message
