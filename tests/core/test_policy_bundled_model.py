"""A catalogue loaded as docs/reliability.md shows (``Policy.from_file``) runs its bundled entry:
``model = "bundled:shapes"`` is resolved by the library to the shipped model's folder, not only
by the demo (a run ended with "Model folder 'shapes' does not exist" before)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.bundled.shapes import MODEL_SIZE, model_dir
from gradio_diffusion_preview.policy import CatalogueEntry, Policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.torch
def test_the_demo_catalogue_from_file_runs_the_bundled_entry():
    policy = Policy.from_file(ROOT / "demo" / "catalogue.toml")
    states = list(
        stream(
            "diffusers",
            prompt="a red circle on a blue background",
            model="shapes",
            steps=2,
            seed=1,
            policy=policy,
        )
    )
    final = states[-1]
    assert final.status == "done", final.message
    (image,) = final.images
    assert (final.step, final.total_steps, final.model) == (2, 2, "shapes")
    assert image.size == (MODEL_SIZE, MODEL_SIZE)
    assert policy.catalogue[0].model == str(model_dir())


def test_a_catalogue_entry_in_code_resolves_the_bundled_model_too():
    entry = CatalogueEntry(id="s", backend="diffusers", model="bundled:shapes")
    assert entry.model == str(model_dir())
    assert CatalogueEntry(id="x", backend="diffusers", model="org/repo").model == "org/repo"


def test_an_unknown_bundled_model_is_refused_when_the_catalogue_loads(tmp_path: Path):
    path = tmp_path / "catalogue.toml"
    path.write_text('[[catalogue]]\nid = "a"\nbackend = "diffusers"\nmodel = "bundled:cats"\n')
    with pytest.raises(ValueError, match=r"No bundled model named 'cats'.*bundled:shapes"):
        Policy.from_file(path)
