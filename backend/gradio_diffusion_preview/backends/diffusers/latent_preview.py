"""Step previews from a latent estimate of the final image (x0), made cheaply and on the device.

Two previewers, after ComfyUI's design (a previewer per concern, chosen by a setting):

- ``LatentRGBPreviewer`` (the default): each latent pixel's channels are mapped to RGB by a fixed
  per-family linear map (``RGB_FACTORS``), a matrix product on the device. The result is at
  latent resolution (1/8 of the image side), so a 512 px image gives a 64 px preview, which is all
  a progress view needs and costs microseconds.
- ``TinyDecoderPreviewer``: a TAESD-family tiny decoder (diffusers ``AutoencoderTiny``:
  madebyollin/taesd, taesdxl, taesd3, taef1) when its weights are on this machine. Sharper, full
  resolution, but a small network run per preview, so it runs on the consumer's thread, only for
  the newest step (see ``PendingPreview``), never on the generation thread.

A batch becomes one preview: the images tiled in a grid (``preview_geometry``), scaled down on the
device to fit ``max_side``. The run declares that size up front and every preview has exactly it.

A model may ship its own factors: a ``latent_rgb.json`` next to its ``model_index.json``, holding
``{"factors": [[r, g, b], ...one row per latent channel], "bias": [r, g, b]}`` in the same
convention as ``RGB_FACTORS`` (``read_rgb_factors``). They take precedence over the family's.

All latents here are in the space the denoiser works in (what diffusers pipelines hold in
``latents``: the VAE latent times ``scaling_factor``, minus ``shift_factor`` first for SD3/Flux),
which is the space the published factors and the TAESD decoders expect.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

Family = Literal["sd1", "sdxl", "sd3", "flux", "qwenimage", "other", "unknown"]
Factors = tuple[list[list[float]], list[float] | None]
FAMILIES: tuple[Family, ...] = ("sd1", "sdxl", "sd3", "flux")

# Latent -> RGB factors: rows are latent channels, columns R, G, B; the optional bias is added
# after the projection. The projection lands in [-1, 1], mapped to [0, 1] for display.
#
# Sources (numeric constants fitted to each VAE, reproduced as data):
# - sd1, sdxl and flux (matrices and biases): stable-diffusion.cpp, latent-preview.h, MIT licence
#   (as this project's Apache-2.0 allows), at
#   https://github.com/leejet/stable-diffusion.cpp/blob/030aa3df2e4eacb86e2ed0f3e2342847f4d3244b/latent-preview.h
#   which publishes the same numbers as ComfyUI's comfy/latent_formats.py (SD15, SDXL, Flux).
# - sd3: ComfyUI, comfy/latent_formats.py class SD3 (GPL-3.0 project), at
#   https://github.com/Comfy-Org/ComfyUI/blob/75399d78ddcc01f46f9b94521b29f1fe8a90ed53/comfy/latent_formats.py
#   the only source found with these numbers (stable-diffusion.cpp's SD3 matrix is another fit).
# - qwenimage: stable-diffusion.cpp, latent-preview.h wan_21_latent_rgb_proj and _bias, MIT, at
#   https://github.com/leejet/stable-diffusion.cpp/blob/40c324bf92cb9837c2cea8e7cbfe3f71f7726c39/latent-preview.h
#   which stable-diffusion.cpp applies to Qwen-Image's latents: its VAE is Wan 2.1's (16 channels,
#   normalised by its latents_mean/std as the denoiser sees them).
# - Sana's DC-AE (32 channels) and Kandinsky 3's movq: no published factors found; previewed from
#   their own channels, standardised.
# SD 1.x/2.x share one VAE, so SD 2.x uses the SD 1.x factors.
RGB_FACTORS: dict[Family, Factors] = {
    # stable-diffusion.cpp sd_latent_rgb_proj (= ComfyUI SD15.latent_rgb_factors; no bias).
    "sd1": (
        [
            [0.3512, 0.2297, 0.3227],
            [0.3250, 0.4974, 0.2350],
            [-0.2829, 0.1762, 0.2721],
            [-0.2120, -0.2616, -0.7177],
        ],
        None,
    ),
    # stable-diffusion.cpp sdxl_latent_rgb_proj and _bias (= ComfyUI SDXL's factors and bias).
    "sdxl": (
        [
            [0.3651, 0.4232, 0.4341],
            [-0.2533, -0.0042, 0.1068],
            [0.1076, 0.1111, -0.0362],
            [-0.3165, -0.2492, -0.2188],
        ],
        [0.1084, -0.0175, -0.0011],
    ),
    # ComfyUI latent_formats.SD3.latent_rgb_factors and latent_rgb_factors_bias (16 channels).
    "sd3": (
        [
            [-0.0922, -0.0175, 0.0749],
            [0.0311, 0.0633, 0.0954],
            [0.1994, 0.0927, 0.0458],
            [0.0856, 0.0339, 0.0902],
            [0.0587, 0.0272, -0.0496],
            [-0.0006, 0.1104, 0.0309],
            [0.0978, 0.0306, 0.0427],
            [-0.0042, 0.1038, 0.1358],
            [-0.0194, 0.0020, 0.0669],
            [-0.0488, 0.0130, -0.0268],
            [0.0922, 0.0988, 0.0951],
            [-0.0278, 0.0524, -0.0542],
            [0.0332, 0.0456, 0.0895],
            [-0.0069, -0.0030, -0.0810],
            [-0.0596, -0.0465, -0.0293],
            [-0.1448, -0.1463, -0.1189],
        ],
        [0.2394, 0.2135, 0.1925],
    ),
    # stable-diffusion.cpp flux_latent_rgb_proj and _bias (= ComfyUI Flux's; 16 channels,
    # applied after unpacking Flux's 2x2 patch tokens back to a 16-channel latent image).
    "flux": (
        [
            [-0.0346, 0.0244, 0.0681],
            [0.0034, 0.0210, 0.0687],
            [0.0275, -0.0668, -0.0433],
            [-0.0174, 0.0160, 0.0617],
            [0.0859, 0.0721, 0.0329],
            [0.0004, 0.0383, 0.0115],
            [0.0405, 0.0861, 0.0915],
            [-0.0236, -0.0185, -0.0259],
            [-0.0245, 0.0250, 0.1180],
            [0.1008, 0.0755, -0.0421],
            [-0.0515, 0.0201, 0.0011],
            [0.0428, -0.0012, -0.0036],
            [0.0817, 0.0765, 0.0749],
            [-0.1264, -0.0522, -0.1103],
            [-0.0280, -0.0881, -0.0499],
            [-0.1262, -0.0982, -0.0778],
        ],
        [-0.0329, -0.0718, -0.0851],
    ),
}

RGB_FACTORS["qwenimage"] = (
    # stable-diffusion.cpp wan_21_latent_rgb_proj and wan_21_latent_rgb_bias (16 channels,
    # applied after unpacking Qwen-Image's 2x2 patch tokens, as Flux's).
    [
        [0.015123, -0.148418, 0.479828],
        [0.003652, -0.010680, -0.037142],
        [0.212264, 0.063033, 0.016779],
        [0.232999, 0.406476, 0.220125],
        [-0.051864, -0.082384, -0.069396],
        [0.085005, -0.161492, 0.010689],
        [-0.245369, -0.506846, -0.117010],
        [-0.151145, 0.017721, 0.007207],
        [-0.293239, -0.207936, -0.421135],
        [-0.187721, 0.050783, 0.177649],
        [-0.013067, 0.265964, 0.166578],
        [0.028327, 0.109329, 0.108642],
        [-0.205343, 0.043991, 0.148914],
        [0.014307, -0.048647, -0.007219],
        [0.217150, 0.053074, 0.319923],
        [0.155357, 0.083156, 0.064780],
    ],
    [-0.270270, -0.234976, -0.456853],
)

MODEL_FACTORS_FILE = "latent_rgb.json"

# Tiny decoders by family (Hugging Face repo ids of madebyollin's TAESD family, in diffusers form).
TAESD_REPOS: dict[Family, str] = {
    "sd1": "madebyollin/taesd",
    "sdxl": "madebyollin/taesdxl",
    "sd3": "madebyollin/taesd3",
    "flux": "madebyollin/taef1",
}

DEFAULT_PREVIEW_MAX_SIDE = 512


def read_rgb_factors(path: str | Path) -> Factors | None:
    """A model's own latent-to-RGB factors from its ``latent_rgb.json`` (see the module
    docstring), or None when the file is absent or malformed (logged: a preview must never stop
    a model from loading)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        factors = [[float(value) for value in row] for row in data["factors"]]
        bias = data.get("bias")
        bias = None if bias is None else [float(value) for value in bias]
        if not factors or any(len(row) != 3 for row in factors) or (bias and len(bias) != 3):
            raise ValueError("factors need 3 columns (R, G, B), bias 3 values")
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("ignoring %s: %s", path, error)
        return None
    return factors, bias


# The VAEs transformer pipelines share, told apart by their latent normalisation (scaling,
# shift) as the released models' configs set it: Flux's VAE (also Chroma, Lumina2, Z-Image,
# HiDream) and SD3's; a 4-channel AutoencoderKL with no shift is SDXL's (AuraFlow, PixArt).
_FLUX_VAE = (0.3611, 0.1159)
_SD3_VAE = (1.5305, 0.0609)


def family_of(pipe: Any) -> Family:
    """The latent family of a loaded diffusers pipeline, judged from its denoiser's structure
    and, for transformer pipelines, from its VAE: the family whose preview factors and tiny
    decoder fit its latents; ``qwenimage`` for Qwen-Image's (Wan 2.1's) VAE. ``other``: a latent
    format with no factors here (Sana's DC-AE, Kandinsky 3's movq, ...), previewed from its own
    channels."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is not None:
        name = type(transformer).__name__
        if name == "FluxTransformer2DModel":
            return "flux"
        if name == "SD3Transformer2DModel":
            return "sd3"
        return _family_of_vae(getattr(pipe, "vae", None))
    unet = getattr(pipe, "unet", None)
    vae = getattr(pipe, "vae", None)
    if vae is None and getattr(pipe, "movq", None) is not None:
        return "other"  # Kandinsky 3's VQ "movq" latents: no published factors
    if unet is None or vae is None or getattr(vae.config, "latent_channels", 4) != 4:
        return "unknown"
    if getattr(unet.config, "addition_embed_type", None) == "text_time":
        return "sdxl"
    return "sd1"


def _family_of_vae(vae: Any) -> Family:
    if vae is not None and type(vae).__name__ == "AutoencoderKLQwenImage":
        return "qwenimage"  # Wan 2.1's VAE; a test config's fewer channels fall back later
    if vae is None or type(vae).__name__ != "AutoencoderKL":
        return "other"
    config = vae.config
    channels = getattr(config, "latent_channels", None)
    scale_shift = (
        round(float(getattr(config, "scaling_factor", 0) or 0), 4),
        round(float(getattr(config, "shift_factor", 0) or 0), 4),
    )
    if channels == 16 and scale_shift == _FLUX_VAE:
        return "flux"
    if channels == 16 and scale_shift == _SD3_VAE:
        return "sd3"
    if channels == 4 and not getattr(config, "shift_factor", None):
        return "sdxl"
    return "other"


def latent_channels_of(pipe: Any) -> int:
    vae = getattr(pipe, "vae", None) or getattr(pipe, "movq", None)
    config = getattr(vae, "config", None)
    # z_dim: the Qwen-Image (Wan) VAE's name for it
    return int(getattr(config, "latent_channels", None) or getattr(config, "z_dim", None) or 4)


def unpack_flux_latents(latents: torch.Tensor, latent_h: int, latent_w: int) -> torch.Tensor:
    """Flux packs each 2x2 patch of a ``C``-channel latent into one token of ``4C`` values,
    ordered (channel, row in patch, column in patch). Undo it: ``(B, h/2*w/2, 4C)`` to
    ``(B, C, h, w)``. (Qwen-Image and Chroma pack the same way.) When the tokens do not match
    the expected size (a pipeline that rounds or bins the size itself) a grid of the same
    aspect ratio with that many tokens is used, if there is one."""
    batch, tokens, packed = latents.shape
    if tokens != (latent_h // 2) * (latent_w // 2) and not packed % 4:
        latent_h, latent_w = _grid_for(tokens, latent_h, latent_w)
    if tokens != (latent_h // 2) * (latent_w // 2) or packed % 4:
        raise ValueError(
            f"packed latents {tuple(latents.shape)} do not match a {latent_w}x{latent_h} latent"
        )
    grid = latents.view(batch, latent_h // 2, latent_w // 2, packed // 4, 2, 2)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(batch, packed // 4, latent_h, latent_w)


def _grid_for(tokens: int, latent_h: int, latent_w: int) -> tuple[int, int]:
    """The (h, w) of a latent of ``tokens`` 2x2 patches closest to the aspect ``h/w``."""
    best = None
    for rows in range(1, tokens + 1):
        if tokens % rows == 0:
            cols = tokens // rows
            error = abs(math.log(rows / cols) - math.log(max(latent_h, 1) / max(latent_w, 1)))
            if best is None or error < best[0]:
                best = (error, rows, cols)
    return (2 * best[1], 2 * best[2]) if best else (latent_h, latent_w)


@dataclass(frozen=True)
class PreviewGeometry:
    """How a batch is laid out in one preview: ``cols`` x ``rows`` tiles of ``tile`` (w, h)
    pixels, scaled to ``size`` (w, h) so that no side exceeds the maximum."""

    tile: tuple[int, int]
    cols: int
    rows: int
    size: tuple[int, int]


def preview_geometry(
    tile_w: int,
    tile_h: int,
    count: int,
    max_side: int = DEFAULT_PREVIEW_MAX_SIDE,
) -> PreviewGeometry:
    """A near-square grid for ``count`` tiles (2 side by side, 3-4 in a 2x2 grid, ...)."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    width, height = cols * tile_w, rows * tile_h
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return PreviewGeometry((tile_w, tile_h), cols, rows, (width, height))


def tile_to_uint8(images: torch.Tensor, geometry: PreviewGeometry) -> torch.Tensor:
    """``(B, h, w, 3)`` images in [0, 1] -> one ``(H, W, 3)`` uint8 tensor of ``geometry.size``,
    on the images' device. A single image that needs no scaling is converted in place."""
    batch, h, w, _ = images.shape
    slots = geometry.cols * geometry.rows
    if slots == 1:
        canvas = images[0]
    else:
        if batch < slots:
            images = torch.cat([images, images.new_zeros(slots - batch, h, w, 3)])
        grid = images[:slots].reshape(geometry.rows, geometry.cols, h, w, 3)
        canvas = grid.permute(0, 2, 1, 3, 4).reshape(geometry.rows * h, geometry.cols * w, 3)
    width, height = geometry.size
    if canvas.shape[:2] != (height, width):
        chw = canvas.permute(2, 0, 1).unsqueeze(0).float()
        canvas = F.interpolate(chw, size=(height, width), mode="area")[0].permute(1, 2, 0)
    return canvas.mul(255).round_().clamp_(0, 255).to(torch.uint8)


class PendingPreview:
    """A preview whose pixels may not be ready yet. ``result()`` returns the ``HxWx3`` uint8
    array; it is called on the consumer's thread, so any waiting (a device copy finishing, a tiny
    decoder running) happens there and never on the generation thread."""

    def __init__(
        self,
        array: np.ndarray | None = None,
        host: torch.Tensor | None = None,
        ready: Any = None,
        work: Any = None,
    ) -> None:
        self._array, self._host, self._ready, self._work = array, host, ready, work

    def result(self) -> np.ndarray:
        if self._array is None:
            if self._work is not None:
                with torch.inference_mode():
                    self._array = _to_numpy(self._work())
                self._work = None
            else:
                if self._ready is not None:
                    self._ready.synchronize()
                self._array = self._host.numpy()
                self._host = self._ready = None
        return self._array


def _to_numpy(pixels: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(pixels.cpu().numpy())


def hand_off(pixels: torch.Tensor) -> PendingPreview:
    """Start moving a small uint8 preview off the device without waiting for it: on CUDA a
    non-blocking copy into pinned memory and an event to wait on later; elsewhere a plain copy
    (CPU: none at all)."""
    if pixels.device.type == "cuda":
        host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(pixels, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
        return PendingPreview(host=host, ready=ready)
    return PendingPreview(array=_to_numpy(pixels.contiguous()))


class LatentRGBPreviewer:
    """Projects a latent image to RGB with a family's published linear factors, or with the
    model's own (``model_factors``, from its ``latent_rgb.json``) when it ships them.

    Families without published factors fall back to the factors for their channel count (4: SD
    1.x, 16: SD3), or, for other counts, to the first three channels, each standardised.
    """

    name = "latent_rgb"
    upscale = 1

    def __init__(self, family: Family, channels: int, model_factors: Factors | None = None) -> None:
        if family == "unknown":  # a UNet model of no known kind: the factors for its channels
            family = {4: "sd1", 16: "sd3"}.get(channels, "unknown")
        self.family: Family = family
        self.channels = channels
        if model_factors and len(model_factors[0]) != channels:
            log.warning(
                "ignoring the model's latent_rgb factors: %d rows for %d latent channels",
                len(model_factors[0]),
                channels,
            )
            model_factors = None
        chosen = model_factors or RGB_FACTORS.get(family)
        if chosen is not None:
            factors, bias = chosen
            if len(factors) != channels:  # e.g. a test config's 4-channel "SD3": no projection
                log.info(
                    "%s factors are for %d latent channels, the model has %d: previews show "
                    "its standardised channels",
                    family,
                    len(factors),
                    channels,
                )
                chosen = None
        if chosen is not None:
            factors, bias = chosen
            self._weight = torch.tensor(factors, dtype=torch.float32)  # (C, 3)
            self._bias = torch.tensor(bias or [0.0, 0.0, 0.0], dtype=torch.float32)
        else:
            self._weight = self._bias = None
        self._on: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_uint8: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` latents -> ``(B, h, w, 3)`` RGB in [0, 1], on the same device.

        A matrix product over the channel axis lands directly in the pixel-interleaved layout
        an image array needs (cheaper than a 1x1 convolution with so few channels)."""
        if latents.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} latent channels, got {latents.shape[1]}")
        pixels = latents.permute(0, 2, 3, 1)
        if self._weight is None:
            first = pixels[..., :3].float()
            if first.shape[-1] < 3:  # one or two channels: shown as grey (or repeated)
                first = first.repeat_interleave(3, dim=-1)[..., :3]
            mean = first.mean(dim=(1, 2), keepdim=True)
            std = first.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
            return ((first - mean) / std / 4 + 0.5).clamp_(0, 1)
        key = (latents.device, latents.dtype)
        if key not in self._on:
            self._on[key] = (
                self._weight.to(latents.device, latents.dtype),
                self._bias.to(latents.device, latents.dtype),
            )
        weight, bias = self._on[key]
        return (pixels @ weight).add_(bias).add_(1).mul_(0.5).clamp_(0, 1)

    def preview(self, latents: torch.Tensor, geometry: PreviewGeometry) -> PendingPreview:
        batch, _, h, w = latents.shape
        if self._weight is not None and batch == 1 and geometry.size == (w, h):
            return self._single(latents[0])
        return hand_off(tile_to_uint8(self.rgb(latents), geometry))

    def _single(self, latent: torch.Tensor) -> PendingPreview:
        """The common case, one image shown at latent size, in as few operations as it takes.

        It runs on the generation thread at every step, where each tensor operation's fixed
        cost counts more than its arithmetic (a 64x64 latent is 16k numbers): see
        ``fused_uint8``. On the CPU numpy does the same at about half torch's fixed cost."""
        channels, h, w = latent.shape
        if latent.device not in self._on_uint8:
            scale = 255 / 2
            self._on_uint8[latent.device] = (
                (self._weight.T * scale).contiguous().to(latent.device),
                ((self._bias + 1) * scale + 0.5)[:, None].to(latent.device),
            )
        weight, bias = self._on_uint8[latent.device]
        flat = latent.reshape(channels, h * w).float()  # fp16/bf16 lack the precision of 0..255
        if latent.device.type == "cpu":
            pixels = weight.numpy() @ flat.numpy()
            pixels += bias.numpy()
            np.clip(pixels, 0, 255, out=pixels)
            array = np.ascontiguousarray(pixels.astype(np.uint8).T).reshape(h, w, 3)
            return PendingPreview(array=array)
        return hand_off(fused_uint8(weight, bias, flat, h, w))


def fused_uint8(
    weight: torch.Tensor, bias: torch.Tensor, flat: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """``(3, C)`` scaled factors, ``(3, 1)`` scaled bias and a ``(C, h*w)`` float32 latent ->
    the ``(h, w, 3)`` uint8 preview, in one matrix product, a clamp, a cast and a transpose.

    The ``(x @ W + b + 1) / 2 * 255`` scaling and a rounding offset are folded into ``weight``
    and ``bias``, so the product gives pixel values and the cast's truncation rounds them.
    Equal to ``tile_to_uint8(rgb(...))`` but for rounding exact halves (one level)."""
    pixels = torch.addmm(bias, weight, flat).clamp_(0, 255).to(torch.uint8)
    return pixels.T.reshape(h, w, 3)


class TinyDecoderPreviewer:
    """Decodes previews with a TAESD-family ``AutoencoderTiny``, on the consumer's thread."""

    name = "taesd"
    upscale = 8

    def __init__(self, decoder: Any, source: str) -> None:
        self.decoder = decoder
        self.source = source
        self.upscale = 2 ** (len(decoder.config.decoder_block_out_channels) - 1)

    def rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` latents -> ``(B, 8h, 8w, 3)`` RGB in [0, 1]."""
        decoded = self.decoder.decode(latents.to(self.decoder.dtype), return_dict=False)[0]
        return decoded.float().add_(1).mul_(0.5).clamp_(0, 1).permute(0, 2, 3, 1)

    def preview(self, latents: torch.Tensor, geometry: PreviewGeometry) -> PendingPreview:
        snapshot = latents.detach().clone()  # the pipeline moves on; keep this step's estimate

        def work() -> torch.Tensor:
            return tile_to_uint8(self.rgb(snapshot), geometry)

        return PendingPreview(work=work)


@dataclass
class PreviewPlan:
    """Everything one run needs to turn an x0 estimate into a preview of a fixed size."""

    previewer: LatentRGBPreviewer | TinyDecoderPreviewer
    geometry: PreviewGeometry
    latent_size: tuple[int, int]  # (w, h) of the latent image
    packed: bool = False

    @classmethod
    def create(
        cls,
        previewer,
        width: int,
        height: int,
        count: int,
        vae_scale_factor: int,
        packed: bool = False,
        max_side: int = DEFAULT_PREVIEW_MAX_SIDE,
    ) -> PreviewPlan:
        if packed:  # Flux rounds the latent down to whole 2x2 patches
            latent_w = 2 * (width // (vae_scale_factor * 2))
            latent_h = 2 * (height // (vae_scale_factor * 2))
        else:
            latent_w, latent_h = width // vae_scale_factor, height // vae_scale_factor
        tile = (latent_w * previewer.upscale, latent_h * previewer.upscale)
        geometry = preview_geometry(tile[0], tile[1], count, max_side)
        return cls(previewer, geometry, (latent_w, latent_h), packed)

    @property
    def size(self) -> tuple[int, int]:
        return self.geometry.size

    def preview(self, x0: torch.Tensor) -> PendingPreview:
        latents = x0.detach()
        if latents.ndim == 3:  # 2x2 patch tokens (Flux, Chroma, Qwen-Image)
            latents = unpack_flux_latents(latents, self.latent_size[1], self.latent_size[0])
        return self.previewer.preview(latents, self.geometry)
