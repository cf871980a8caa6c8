"""Training the shapes model's autoencoder, and what is fitted on it afterwards: the latent
scaling factor and the latent-to-RGB factors for step previews.

The loss is L1 reconstruction, a small KL term (keeps the latent smooth and near Gaussian), and a
linear read-out term: a 1x1 projection of the latent mean must match the picture averaged over
4 x 4 pixels. That makes the latent carry colour linearly, so a latent-to-RGB preview (one small
matrix) shows the true colours; the shipped factors are then refitted by least squares on the
scaled latents the denoiser produces.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from shapes_data import draw_batch, images_to_tensor
from shapes_diffusion import warmup_cosine

KL_WEIGHT = 1e-4
READOUT_WEIGHT = 0.5


def train_vae(
    vae,
    steps: int,
    seed: int,
    batch: int = 32,
    lr: float = 1e-3,
    log: Callable[[dict], None] = print,
) -> list[dict]:
    """Train ``vae`` in place for ``steps`` batches of fresh drawings; returns the loss log."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    readout = torch.nn.Conv2d(vae.config.latent_channels, 3, 1)
    params = [*vae.parameters(), *readout.parameters()]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = warmup_cosine(optimiser, steps, floor=0.05)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    history, started = [], time.monotonic()
    vae.train()
    for step in range(1, steps + 1):
        images = images_to_tensor(draw_batch(rng, batch)[0])
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample()).sample
        mean, logvar = posterior.mean, posterior.logvar
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        target = F.avg_pool2d(images, factor)
        read = F.mse_loss(readout(mean), target)
        l1 = F.l1_loss(recon, images)
        loss = l1 + KL_WEIGHT * kl + READOUT_WEIGHT * read
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            row = {
                "stage": "vae",
                "step": step,
                "seconds": round(time.monotonic() - started, 1),
                "l1": round(l1.item(), 5),
                "kl": round(kl.item(), 4),
                "readout": round(read.item(), 5),
            }
            history.append(row)
            log(row)
    vae.eval()
    return history


@torch.no_grad()
def encode(vae, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Latent means of ``images`` ([-1, 1], NCHW), unscaled."""
    return torch.cat(
        [vae.encode(images[i : i + batch]).latent_dist.mean for i in range(0, len(images), batch)]
    )


@torch.no_grad()
def fit_latent_rgb(latents: torch.Tensor, images: torch.Tensor) -> tuple[list, list]:
    """Least-squares factors (C x 3) and bias (3) from scaled latents to the pictures averaged
    over each latent pixel's patch, in [-1, 1]: the ``latent_rgb.json`` the previewer reads."""
    factor = images.shape[-1] // latents.shape[-1]
    target = F.avg_pool2d(images, factor).permute(0, 2, 3, 1).reshape(-1, 3).double()
    inputs = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    design = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=inputs.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, target).solution  # (C + 1, 3)
    factors = [[round(v, 5) for v in row] for row in solution[:-1].tolist()]
    bias = [round(v, 5) for v in solution[-1].tolist()]
    return factors, bias


def finetune_decoder(
    vae,
    steps: int,
    seed: int,
    batch: int = 16,
    lr: float = 5e-4,
    log: Callable[[dict], None] = print,
) -> list[dict]:
    """Train only the decoder (and its post-quantisation conv) for ``steps`` batches of fresh
    drawings, the encoder frozen: sharper reconstructions without moving the latent space the
    denoiser learns, so it can run before, after or beside the denoiser's training."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    vae.requires_grad_(False)
    parts = [vae.decoder, vae.post_quant_conv]
    params = [p for part in parts for p in part.parameters()]
    for param in params:
        param.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = warmup_cosine(optimiser, steps, floor=0.05)
    history, started = [], time.monotonic()
    vae.train()
    for step in range(1, steps + 1):
        images = images_to_tensor(draw_batch(rng, batch)[0])
        with torch.no_grad():
            latents = vae.encode(images).latent_dist.sample()
        l1 = F.l1_loss(vae.decode(latents).sample, images)
        optimiser.zero_grad(set_to_none=True)
        l1.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            row = {
                "stage": "decoder",
                "step": step,
                "seconds": round(time.monotonic() - started, 1),
                "l1": round(l1.item(), 5),
            }
            history.append(row)
            log(row)
    vae.eval()
    vae.requires_grad_(True)
    return history
