"""Every sampler and previewer offered for the bundled shapes model runs on it to the last step:
the choices come from the model's own scheduler config (its cosine noise schedule cannot run
``dpm++_karras`` in diffusers), in the backend's capabilities and in a policy's choices alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.bundled.shapes import model_dir
from gradio_diffusion_preview.policy import Policy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
BACKEND = DiffusersBackend(device="cpu", dtype="float32")
MODEL = str(model_dir())
OFFERED = BACKEND.capabilities_for(MODEL).option_choices


@pytest.mark.parametrize("scheduler", OFFERED["scheduler"])
def test_every_offered_sampler_runs_on_the_bundled_model(scheduler):
    states = list(
        stream(
            BACKEND,
            model=MODEL,
            prompt="a red circle on a blue background",
            steps=12,
            seed=1,
            options={"scheduler": scheduler},
        )
    )
    assert states[-1].status == "done", states[-1].message
    assert states[-1].step == 12 and len(states[-1].images) == 1


@pytest.mark.parametrize("previewer", OFFERED["previewer"])
def test_every_offered_previewer_runs_on_the_bundled_model(previewer):
    states = list(
        stream(
            BACKEND,
            model=MODEL,
            prompt="a red circle",
            steps=3,
            seed=1,
            options={"previewer": previewer},
        )
    )
    assert states[-1].status == "done", states[-1].message
    assert any(state.preview for state in states) == (previewer != "none")


def test_a_sampler_that_cannot_run_is_not_offered_nor_accepted():
    assert "DPM++ 2M Karras" in DiffusersBackend.capabilities.option_choices["scheduler"]
    assert "DPM++ 2M Karras" not in OFFERED["scheduler"]
    states = list(
        stream(
            BACKEND,
            model=MODEL,
            prompt="a red circle",
            steps=12,
            options={"scheduler": "dpm++_karras"},
        )
    )
    assert states[-1].status == "error" and states[-1].reason == "invalid_request"
    policy = Policy.from_file(ROOT / "demo" / "catalogue.toml")
    shapes = next(entry for entry in policy.catalogue if entry.model == MODEL)
    choices = policy.option_choices(shapes, BACKEND)
    assert "DPM++ 2M Karras" not in choices["scheduler"] and "DPM++ 2M" in choices["scheduler"]


def test_choices_follow_the_scheduler_config():
    from gradio_diffusion_preview.backends.diffusers.scheduler_choices import choices_for_config

    flow = {"_class_name": "FlowMatchEulerDiscreteScheduler"}
    assert choices_for_config(flow) == ("Default", "Euler")
    assert "DPM++ 2M Karras" not in choices_for_config({"beta_schedule": "squaredcos_cap_v2"})
    assert "DPM++ 2M Karras" in choices_for_config({"beta_schedule": "scaled_linear"})
