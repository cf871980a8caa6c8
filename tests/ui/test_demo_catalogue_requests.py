"""Every entry of the demo's catalogue runs with the values its own Generate controls send.

A form sends every control's value, hidden ones too (FLUX.1 [schnell]'s hidden guidance slider
still holds 3.5): ``accepted_fields`` must drop what the chosen model does not take, or the
demo refuses its own entry. The hf-inference entries run against the loopback router
(tests/support/fake_hf_router.py), configured by the environment as a server would be.
"""

from __future__ import annotations

import pytest
from fake_hf_router import configure_environment, serve_router
from testenv import load_demo_module

from gradio_diffusion_preview import Registry, accepted_fields, controls
from gradio_diffusion_preview.backends.hf_inference.catalogue import EDITING
from gradio_diffusion_preview.compare import compare
from gradio_diffusion_preview.generate_tab import generate_run
from gradio_diffusion_preview.plugins import reset_registry

SCHNELL = "black-forest-labs/FLUX.1-schnell"
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"

demo = load_demo_module()
POLICY = demo.demo_policy()
EDITORS = {model.id for model in EDITING}
TEXT_ENTRIES = [entry for entry in POLICY.catalogue if entry.model not in EDITORS]
"""The entries the Generate tab runs: Inference's editing models take a picture (the Edit tab:
tests/ui/test_edit_tab_inference.py)."""


@pytest.fixture
def hf_router(monkeypatch):
    """The registry's own hf-inference backend served by the loopback router."""
    for router in serve_router(monkeypatch, {SCHNELL: ("hf-inference",), SDXL: ("hf-inference",)}):
        configure_environment(monkeypatch, router, f"{SCHNELL},{SDXL}")
        reset_registry()
        try:
            yield router
        finally:
            reset_registry()


def sent_by_controls(entry) -> dict:
    """What the Generate tab sends for ``entry``: each control's value as set for it."""
    settings = controls.control_settings(POLICY, entry.backend, entry.id)
    assert settings is not None, entry.id
    return {
        "steps": settings["steps"]["value"],
        "guidance": settings["guidance"]["value"],
        "width": settings["width"]["value"],
        "height": settings["height"]["value"],
        "num_images": settings["num_images"]["value"],
        "options_json": controls.options_json(
            settings["sampler"]["value"], settings["previewer"]["value"]
        ),
    }


@pytest.mark.parametrize("entry", TEXT_ENTRIES, ids=lambda entry: entry.id)
def test_every_catalogue_entry_runs_with_what_its_controls_send(entry, hf_router):
    values = sent_by_controls(entry)
    states = list(
        generate_run(
            POLICY,
            entry.backend,
            entry.id,
            "a red circle on a blue background",
            "blurry",  # typed before switching to a model without a negative prompt
            values["steps"],
            values["guidance"],
            -1,
            values["width"],
            values["height"],
            values["num_images"],
            values["options_json"],
        )
    )
    last = states[-1]
    assert last.status == "done", (entry.id, last.reason, last.message)
    assert len(last.images) == values["num_images"]


def test_hidden_controls_are_dropped_by_the_models_own_capabilities(hf_router):
    """FLUX.1 [schnell] takes no guidance and no negative prompt (its own capabilities; the
    hf-inference backend as a whole takes both): they are dropped, the rest kept."""
    registry = Registry(load_entry_points=False)
    fields = {
        "prompt": "a fox",
        "model": "flux-schnell",
        "guidance": 3.5,
        "negative_prompt": "blurry",
        "steps": 4,
        "seed": 7,
    }
    sent = accepted_fields("hf-inference", fields, policy=POLICY, registry=registry)
    assert sent == {"prompt": "a fox", "model": "flux-schnell", "steps": 4, "seed": 7}
    sdxl = accepted_fields("hf-inference", {**fields, "model": "sdxl"}, policy=POLICY)
    assert sdxl["guidance"] == 3.5 and sdxl["negative_prompt"] == "blurry"
    # Without a policy the model is named as the backend knows it.
    direct = accepted_fields("hf-inference", {**fields, "model": SCHNELL}, registry=registry)
    assert "guidance" not in direct and "negative_prompt" not in direct
    # An unknown backend or entry: sent as is, for the run to refuse naming the choices.
    assert accepted_fields("nope", fields) == fields
    assert accepted_fields("hf-inference", {**fields, "model": "x"}, policy=POLICY)["guidance"]


def test_a_compare_panel_on_flux_schnell_beside_the_bundled_model_finishes(hf_router):
    """The Compare tab sends one negative prompt (and no guidance) to every panel; FLUX.1
    [schnell] takes no negative prompt and must still finish beside the bundled model."""
    runs = compare(
        POLICY,
        ["shapes", "flux-schnell"],
        prompt="a red circle",
        negative_prompt="blurry",
        steps=4,
        width=256,
        height=256,
        seed=None,
    )
    shapes, flux = list(runs)[-1]
    assert flux.status == "done", (flux.reason, flux.message)
    assert len(flux.images) == 1
    # No size suits both (the shapes model stops at 128, FLUX at 256 and up): the bundled
    # panel refuses it, naming the fix, and only its own panel.
    assert shapes.reason == "invalid_request" and "use a width from 64 to 128" in shapes.message
