"""Training the shapes model's denoiser: the UNet and the text encoder together, from scratch.

- v-prediction on the scheduler's own noise schedule, timesteps drawn uniformly, each loss
  weighted by min(SNR, 5) / (SNR + 1) (Min-SNR weighting, Hang et al. 2023), which speeds up
  convergence by not letting the easy low-noise steps dominate.
- The latents are the VAE's latent means times its scaling factor, encoded once up front.
- An exponential moving average of the weights is what gets evaluated and shipped.
- Every ``eval_every`` steps the averaged model draws the held-out evaluation prompts and
  ``evaluate`` calls back with them; the rows make the learning curve.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence

import torch
from shapes_data import training_prompt

from gradio_diffusion_preview.bundled.shapes.grammar import Scene

MIN_SNR_GAMMA = 5.0


class Ema:
    """An exponential moving average of some modules' weights, kept in copies of them."""

    def __init__(self, modules: Sequence[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.copies = [copy.deepcopy(module).eval().requires_grad_(False) for module in modules]
        self.sources = list(modules)

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for average, source in zip(self.copies, self.sources, strict=True):
            for kept, new in zip(average.parameters(), source.parameters(), strict=True):
                kept.lerp_(new, 1 - decay)


def warmup_cosine(optimiser, steps: int, warmup: float = 0.05, floor: float = 0.1):
    """Learning rate: a linear warm-up over ``warmup`` of the steps, then a cosine decay to
    ``floor`` times the peak."""
    import math

    ramp = max(1, round(warmup * steps))

    def factor(step: int) -> float:
        if step < ramp:
            return (step + 1) / ramp
        progress = (step - ramp) / max(1, steps - ramp)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids)[0]


def train_denoiser(
    unet,
    text_encoder,
    tokenizer,
    scheduler,
    latents: torch.Tensor,
    scenes: list[Scene],
    steps: int,
    seed: int,
    batch: int = 64,
    lr: float = 1e-3,
    ema_decay: float = 0.999,
    eval_every: int = 0,
    evaluate: Callable[[Sequence[torch.nn.Module], int], dict] | None = None,
    log: Callable[[dict], None] = print,
) -> tuple[Ema, list[dict]]:
    """Train in place; returns the weight average (``copies``: unet, text encoder) and the log."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    alphas = scheduler.alphas_cumprod.float()
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimiser = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    schedule = warmup_cosine(optimiser, steps)
    ema = Ema([unet, text_encoder], ema_decay)
    history: list[dict] = []
    started, window = time.monotonic(), []
    unet.train()
    text_encoder.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(latents), (batch,))
        clean = latents[index].float()
        prompts = [training_prompt(rng, scenes[i]) for i in index.tolist()]
        noise = torch.randn_like(clean)
        t = torch.randint(0, len(alphas), (batch,))
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * clean
        snr = alphas[t] / (1 - alphas[t])
        weight = snr.clamp(max=MIN_SNR_GAMMA) / (snr + 1)
        context = encode_prompts(tokenizer, text_encoder, prompts)
        predicted = unet(noisy, t, context).sample
        per_image = (predicted - target).pow(2).mean(dim=(1, 2, 3))
        loss = (weight * per_image).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        ema.update(step)
        window.append(loss.item())
        if step % 50 == 0 or step == steps:
            row = {
                "stage": "denoiser",
                "step": step,
                "seconds": round(time.monotonic() - started, 1),
                "loss": round(sum(window) / len(window), 5),
                "lr": round(schedule.get_last_lr()[0], 6),
            }
            window = []
            if evaluate and eval_every and (step % eval_every == 0 or step == steps):
                unet.eval()
                text_encoder.eval()
                row.update(evaluate(ema.copies, step))
                unet.train()
                text_encoder.train()
            history.append(row)
            log(row)
    return ema, history
