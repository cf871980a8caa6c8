"""The latent-to-RGB previewer, the batch tiling and the tiny-decoder previewer, on synthetic
latents of each family's shape (no pipeline needed)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from gradio_diffusion_preview.backends.diffusers.latent_preview import (
    RGB_FACTORS,
    LatentRGBPreviewer,
    PreviewPlan,
    TinyDecoderPreviewer,
    fused_uint8,
    preview_geometry,
    tile_to_uint8,
    unpack_flux_latents,
)

CHANNELS = {"sd1": 4, "sdxl": 4, "sd3": 16, "flux": 16, "qwenimage": 16}


def latent_of_colour(family: str, rgb: tuple[float, float, float], h: int = 8, w: int = 8):
    """The smallest latent the family's factors project onto ``rgb`` (0..1), everywhere."""
    factors, bias = RGB_FACTORS[family]
    weight = torch.tensor(factors, dtype=torch.float64)  # (C, 3)
    target = torch.tensor(rgb, dtype=torch.float64) * 2 - 1 - torch.tensor(bias or [0.0] * 3)
    vector = torch.linalg.pinv(weight.T) @ target  # (C,)
    return vector.float().view(1, -1, 1, 1).expand(1, len(factors), h, w).contiguous()


def hue(pixel: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(pixel / 255.0))[0] * 360


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux", "qwenimage"])
def test_each_family_has_a_factor_row_per_latent_channel(family):
    factors, bias = RGB_FACTORS[family]
    assert len(factors) == CHANNELS[family]
    assert all(len(row) == 3 for row in factors)
    assert bias is None or len(bias) == 3


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux"])
def test_preview_is_a_uint8_rgb_array_at_latent_resolution(family):
    previewer = LatentRGBPreviewer(family, CHANNELS[family])
    plan = PreviewPlan.create(previewer, width=96, height=64, count=1, vae_scale_factor=8)
    latents = torch.randn(1, CHANNELS[family], 8, 12)
    if family == "flux":  # Flux hands the callback packed 2x2 patch tokens
        latents = pack_like_flux(latents)
    array = plan.preview(latents).result()
    assert plan.size == (12, 8)
    assert array.shape == (8, 12, 3)
    assert array.dtype == np.uint8
    assert array.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux", "qwenimage"])
@pytest.mark.parametrize(
    ("colour", "expected_hue"),
    [
        ((0.85, 0.15, 0.15), 0),
        ((0.15, 0.75, 0.2), 124),
        ((0.2, 0.25, 0.85), 235),
        ((0.9, 0.8, 0.1), 53),
    ],
)
def test_a_latent_made_from_a_colour_previews_as_that_colour(family, colour, expected_hue):
    previewer = LatentRGBPreviewer(family, CHANNELS[family])
    geometry = preview_geometry(8, 8, 1)
    pixels = tile_to_uint8(previewer.rgb(latent_of_colour(family, colour)), geometry).numpy()
    centre = pixels[4, 4].astype(float)
    assert np.allclose(centre, np.array(colour) * 255, atol=2)
    assert abs((hue(centre) - expected_hue + 180) % 360 - 180) < 6
    assert (pixels == pixels[0, 0]).all()  # a flat latent gives a flat preview


def test_sd1_first_channel_is_brightness():
    # All three factors of SD 1.x's first latent channel are positive: more of it is brighter.
    previewer = LatentRGBPreviewer("sd1", 4)
    dark, bright = torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    dark[:, 0], bright[:, 0] = -1.0, 1.0
    assert (previewer.rgb(bright) > previewer.rgb(dark)).all()
    assert previewer.rgb(bright).shape == (1, 2, 2, 3)


def test_zero_latent_is_mid_grey_plus_the_bias():
    for family in ("sd1", "sdxl"):
        rgb = LatentRGBPreviewer(family, 4).rgb(torch.zeros(1, 4, 1, 1)).flatten()
        bias = torch.tensor(RGB_FACTORS[family][1] or [0.0, 0.0, 0.0])
        assert torch.allclose(rgb, (bias + 1) / 2, atol=1e-6)


def pack_like_flux(latents: torch.Tensor) -> torch.Tensor:
    """Pack as diffusers' FluxPipeline does (checked against it in the next test)."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def test_flux_unpacking_inverts_the_pipelines_packing():
    from diffusers import FluxPipeline

    latents = torch.randn(2, 16, 6, 10)
    packed = FluxPipeline._pack_latents(latents, 2, 16, 6, 10)
    assert torch.equal(packed, pack_like_flux(latents))
    assert torch.equal(unpack_flux_latents(packed, 6, 10), latents)


def test_packed_flux_latents_preview_like_unpacked_ones():
    previewer = LatentRGBPreviewer("flux", 16)
    latents = latent_of_colour("flux", (0.8, 0.3, 0.1), h=4, w=6)
    flat = PreviewPlan.create(previewer, 48, 32, 1, 8).preview(latents).result()
    plan = PreviewPlan.create(previewer, 48, 32, 1, 8, packed=True)
    assert np.array_equal(plan.preview(pack_like_flux(latents)).result(), flat)


@pytest.mark.parametrize(("count", "cols", "rows"), [(1, 1, 1), (2, 2, 1), (3, 2, 2), (4, 2, 2)])
def test_a_batch_is_tiled_into_one_preview(count, cols, rows):
    previewer = LatentRGBPreviewer("sd1", 4)
    plan = PreviewPlan.create(previewer, 64, 48, count, 8)
    assert (plan.geometry.cols, plan.geometry.rows) == (cols, rows)
    colours = [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9), (0.9, 0.9, 0.1)][:count]
    latents = torch.cat([latent_of_colour("sd1", c, h=6, w=8) for c in colours])
    array = plan.preview(latents).result()
    assert array.shape == (6 * rows, 8 * cols, 3) and plan.size == (8 * cols, 6 * rows)
    for index, colour in enumerate(colours):
        row, col = divmod(index, cols)
        tile = array[row * 6 : (row + 1) * 6, col * 8 : (col + 1) * 8]
        assert np.allclose(tile.reshape(-1, 3).mean(0), np.array(colour) * 255, atol=2)
    if count == 3:  # the empty slot is black
        assert array[6:, 8:].max() == 0


def test_large_previews_are_scaled_down_to_the_declared_size():
    previewer = LatentRGBPreviewer("sdxl", 4)
    plan = PreviewPlan.create(previewer, 2048, 1536, 4, 8, max_side=300)
    assert plan.size == (300, 225)
    array = plan.preview(torch.randn(4, 4, 192, 256)).result()
    assert array.shape == (225, 300, 3) and array.dtype == np.uint8


def test_unknown_families_fall_back_by_channel_count():
    assert LatentRGBPreviewer("unknown", 4).family == "sd1"
    assert LatentRGBPreviewer("unknown", 16).family == "sd3"
    odd = LatentRGBPreviewer("unknown", 8)
    rgb = odd.rgb(torch.randn(1, 8, 5, 5))
    assert rgb.shape == (1, 5, 5, 3) and float(rgb.min()) >= 0 and float(rgb.max()) <= 1


def test_half_precision_latents_preview_too():
    previewer = LatentRGBPreviewer("sd1", 4)
    plan = PreviewPlan.create(previewer, 64, 64, 1, 8)
    array = plan.preview(torch.randn(1, 4, 8, 8, dtype=torch.bfloat16)).result()
    assert array.shape == (8, 8, 3) and array.dtype == np.uint8


def test_tiny_decoder_previews_at_image_resolution_on_the_consumer_side():
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    decoder = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    ).eval()
    previewer = TinyDecoderPreviewer(decoder, "random")
    plan = PreviewPlan.create(previewer, 64, 32, 2, 8)
    assert plan.size == (128, 32)
    latents = torch.randn(2, 4, 4, 8)
    pending = plan.preview(latents)
    latents.zero_()  # the pipeline reuses its tensors; the preview kept its own copy
    array = pending.result()
    assert array.shape == (32, 128, 3) and array.dtype == np.uint8
    assert pending.result() is array  # decoded once


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux"])
def test_single_image_fast_path_matches_the_general_projection(family, dtype):
    """One image at latent size takes a fused path (numpy on the CPU, torch on a device), in
    float32 whatever the latent's dtype; it must give the pixels the general projection and
    tiling give for the float32 latent."""
    previewer = LatentRGBPreviewer(family, CHANNELS[family])
    plan = PreviewPlan.create(previewer, width=96, height=64, count=1, vae_scale_factor=8)
    latents = (
        torch.randn(1, CHANNELS[family], 8, 12, generator=torch.Generator().manual_seed(3)) * 2
    ).to(dtype)
    fast = plan.preview(latents).result()
    general = tile_to_uint8(previewer.rgb(latents.float()), plan.geometry).numpy()
    assert fast.shape == general.shape == (8, 12, 3)
    assert fast.flags["C_CONTIGUOUS"]
    assert np.abs(fast.astype(int) - general.astype(int)).max() <= 1
    assert (fast != general).mean() < 0.01  # only exact halves may round the other way


def test_the_device_path_of_the_fused_projection_matches_numpys():
    """``fused_uint8`` is what a GPU runs; it must give the CPU's (numpy's) pixels."""
    previewer = LatentRGBPreviewer("sdxl", 4)
    plan = PreviewPlan.create(previewer, width=96, height=64, count=1, vae_scale_factor=8)
    latent = torch.randn(4, 8, 12, generator=torch.Generator().manual_seed(5)) * 2
    on_cpu = plan.preview(latent[None]).result()
    weight, bias = previewer._on_uint8[latent.device]
    on_device = fused_uint8(weight, bias, latent.reshape(4, -1), 8, 12).contiguous().numpy()
    assert np.array_equal(on_device, on_cpu)


def test_qwen_image_vae_previews_with_its_wan21_factors():
    """Qwen-Image's VAE (Wan 2.1's, 16 channels) is told by its class and gets
    stable-diffusion.cpp's Wan 2.1 factors, not the standardised channels of "other"."""
    from types import SimpleNamespace

    from diffusers import AutoencoderKLQwenImage

    from gradio_diffusion_preview.backends.diffusers.latent_preview import (
        family_of,
        latent_channels_of,
    )

    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=16, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False]
    )
    pipe = SimpleNamespace(transformer=object(), vae=vae)
    assert (family_of(pipe), latent_channels_of(pipe)) == ("qwenimage", 16)
    previewer = LatentRGBPreviewer(family_of(pipe), latent_channels_of(pipe))
    weight = torch.tensor(RGB_FACTORS["qwenimage"][0])
    assert torch.equal(previewer._weight, weight)
