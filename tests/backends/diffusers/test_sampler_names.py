"""Samplers by AUTOMATIC1111's names (issue #21 item 6): the result and the PNG info name the
sampler a run used as A1111 does ("Euler a", "Euler"), the model's default included, and the old
option names stay aliases for API users."""

from __future__ import annotations

import pytest

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.bundled.shapes import model_dir
from gradio_diffusion_preview.generation_info import infotext

MODEL = str(model_dir())


def final_state(**options):
    states = list(
        stream(
            "diffusers",
            model=MODEL,
            prompt="a red circle on a blue background",
            seed=3,
            steps=3,
            width=64,
            height=64,
            options=options,
        )
    )
    assert states[-1].status == "done", states[-1].message
    return states[-1]


@pytest.mark.parametrize(
    ("options", "sampler"),
    [
        ({}, "Euler"),  # the shapes model's own EulerDiscreteScheduler, by A1111's name
        ({"scheduler": "Default"}, "Euler"),
        ({"scheduler": "euler_a"}, "Euler a"),  # an old name: an alias
        ({"scheduler": "DDIM"}, "DDIM"),
    ],
)
def test_the_result_and_png_info_name_the_sampler_as_automatic1111_does(options, sampler):
    state = final_state(**options)
    assert state.params.sampler == sampler
    assert f"Sampler: {sampler}," in infotext(state.params)
    assert "Scheduler" not in infotext(state.params)
