"""A model's own latent-to-RGB factors (``latent_rgb.json`` in its folder): read, checked, and
used by the latent-to-RGB previewer in place of its family's."""

from __future__ import annotations

import json

import torch

from gradio_diffusion_preview.backends.diffusers.latent_preview import (
    RGB_FACTORS,
    LatentRGBPreviewer,
    read_rgb_factors,
)

# Channel 0 drives red, 1 green, 2 blue; channel 3 nothing; a bias that lifts blue.
OWN = {"factors": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], "bias": [0, 0, 0.5]}


def test_factors_file_is_read(tmp_path):
    path = tmp_path / "latent_rgb.json"
    path.write_text(json.dumps(OWN))
    factors, bias = read_rgb_factors(path)
    assert factors == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert bias == [0.0, 0.0, 0.5]
    path.write_text(json.dumps({"factors": OWN["factors"]}))
    assert read_rgb_factors(path) == (factors, None)


def test_missing_or_malformed_factors_are_ignored(tmp_path, caplog):
    assert read_rgb_factors(tmp_path / "absent.json") is None
    path = tmp_path / "latent_rgb.json"
    for bad in ("not json", json.dumps({"bias": [0, 0, 0]}), json.dumps({"factors": [[1, 2]]})):
        path.write_text(bad)
        assert read_rgb_factors(path) is None
    assert "ignoring" in caplog.text


def test_previewer_uses_the_models_own_factors():
    latents = torch.zeros(1, 4, 2, 2)
    latents[:, 0] = 1.0  # full red by the model's factors
    own = LatentRGBPreviewer("sd1", 4, (OWN["factors"], OWN["bias"])).rgb(latents)
    assert torch.allclose(own[0, 0, 0], torch.tensor([1.0, 0.5, 0.75]))
    family = LatentRGBPreviewer("sd1", 4).rgb(latents)
    sd1_first_row = (torch.tensor(RGB_FACTORS["sd1"][0][0]) + 1) / 2
    assert torch.allclose(family[0, 0, 0], sd1_first_row)


def test_factors_for_another_channel_count_fall_back_to_the_family():
    three_rows = ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], None)
    previewer = LatentRGBPreviewer("sd1", 4, three_rows)
    expected = LatentRGBPreviewer("sd1", 4).rgb(torch.ones(1, 4, 1, 1))
    assert torch.equal(previewer.rgb(torch.ones(1, 4, 1, 1)), expected)
