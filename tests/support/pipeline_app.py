"""A Space author's app, as written before live previews: a pipeline loaded at module level with
a LoRA merged into its UNet, then the same app streaming that very pipeline into the widget.

There is no peft here, so ``load_lora_weights`` cannot run; the LoRA is the same thing built by
hand: a low-rank ``B @ A`` update added beside each attention projection of the UNet, as peft's
``LoraLayer`` does. It changes the output, so a run that lost it would not match."""

from __future__ import annotations

import os

import gradio as gr
import torch
from diffusers import StableDiffusionPipeline

from gradio_diffusion_preview import DiffusionPreview, stream


class LoraLinear(torch.nn.Module):
    """``base(x) + scale * up(down(x))``: a LoRA around a Linear, the base weights shared."""

    def __init__(self, base: torch.nn.Linear, rank: int = 4, scale: float = 1.0) -> None:
        super().__init__()
        self.base, self.scale = base, scale
        self.down = torch.nn.Linear(base.in_features, rank, bias=False)
        self.up = torch.nn.Linear(rank, base.out_features, bias=False)
        torch.nn.init.normal_(self.down.weight, std=0.5)
        torch.nn.init.normal_(self.up.weight, std=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))


def load_lora(pipe: StableDiffusionPipeline, seed: int = 3) -> int:
    """Wrap every attention query and value projection of the UNet in a ``LoraLinear``."""
    torch.manual_seed(seed)
    wrapped = 0
    for module in pipe.unet.modules():
        for name in ("to_q", "to_v"):
            layer = getattr(module, name, None)
            if isinstance(layer, torch.nn.Linear):
                setattr(module, name, LoraLinear(layer))
                wrapped += 1
    return wrapped


pipe = StableDiffusionPipeline.from_pretrained(os.environ["PIPELINE_APP_MODEL"])
LORA_LAYERS = load_lora(pipe)


def generate(prompt: str, seed: float):
    yield from stream(pipe, prompt=prompt, seed=int(seed), steps=4, width=64, height=64)


with gr.Blocks() as demo:
    prompt = gr.Textbox("a red circle")
    seed = gr.Number(7)
    preview = DiffusionPreview()
    gr.Button("Generate").click(generate, [prompt, seed], preview, api_name="generate")
