"""Question 7, on a GPU: what previews cost where real models run. Not part of ``make bench``;
run it on a GPU machine, then commit the bench/gpu_results.json it writes (``make bench`` keeps
those figures in docs/benchmarks.md, dated, until a later GPU run replaces them).

    .venv/bin/python bench/gpu.py            # needs CUDA; SD 1.5-size and SDXL-size, fp16
    .venv/bin/python bench/gpu.py --tiny     # a tiny UNet on whatever device there is (smoke)

For SD 1.5-size (UNet at 64x64 latents, 768-wide text states) and SDXL-size (128x128 latents,
2048-wide, the text-time embedding) UNets with random weights at fp16 (the cost of a
convolution does not depend on its weights; nothing is downloaded), with classifier-free
guidance (batch 2) and an Euler schedule:

- a denoising run with this project's preview on every step (x0 estimate, latent-to-RGB,
  hand-off to a consumer thread that materialises and JPEG-encodes it) against none;
  target: under 2%;
- the step callback's time on the generation thread (target: under 0.3 ms), run with CUDA's
  sync debug mode set to error, so a device sync in it fails the check;
- a TAESD-architecture tiny-decoder preview per step and a full VAE decode per step (the
  AUTOMATIC1111 "Full" baseline), timed with a sync.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import Row  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "gpu_results.json"
STEPS, REPEATS = 30, 3
SD15 = {
    "sample_size": 64,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SDXL = {
    "sample_size": 128,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "use_linear_projection": True,
}
TINY = {
    "sample_size": 16,
    "block_out_channels": (32, 64),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
}

SD_VAE = {  # Stable Diffusion's VAE architecture
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}
TINY_VAE = {**SD_VAE, "block_out_channels": (32, 32, 32, 32), "layers_per_block": 1}


class Model:
    """A random-weight UNet and the inputs of one guided step."""

    def __init__(self, config: dict, device, dtype) -> None:
        import torch
        from diffusers import UNet2DConditionModel

        torch.manual_seed(0)
        self.unet = UNet2DConditionModel(**config).to(device, dtype).eval()
        self.side = config["sample_size"]
        width = config["cross_attention_dim"]
        self.context = torch.randn(2, 77, width, device=device, dtype=dtype)
        self.added = None
        if config.get("addition_embed_type") == "text_time":
            self.added = {
                "text_embeds": torch.randn(2, 1280, device=device, dtype=dtype),
                "time_ids": torch.tensor([[1024, 1024, 0, 0, 1024, 1024]] * 2, device=device),
            }
        self.device, self.dtype = device, dtype

    def noise(self, latents, timestep):
        import torch

        both = torch.cat([latents] * 2).to(self.dtype)
        out = self.unet(
            both, timestep, encoder_hidden_states=self.context, added_cond_kwargs=self.added
        ).sample
        uncond, cond = out.chunk(2)
        return (uncond + 7.5 * (cond - uncond)).to(latents.dtype)


def denoise(model: Model, steps: int, on_step=None) -> None:
    """One Euler run; ``on_step(noise, timestep, sample)`` after each step, like the backend's
    step callback (``on_step.attach(scheduler)`` first)."""
    import torch
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    scheduler.set_timesteps(steps, device=model.device)
    sample = torch.randn(1, 4, model.side, model.side, device=model.device)
    sample = sample * scheduler.init_noise_sigma
    if on_step is not None:
        on_step.attach(scheduler)
    with torch.inference_mode():
        for timestep in scheduler.timesteps:
            noise = model.noise(scheduler.scale_model_input(sample, timestep), timestep)
            sample = scheduler.step(noise, timestep, sample, return_dict=False)[0]
            if on_step is not None:
                on_step(noise, timestep, sample)
    if model.device.type == "cuda":
        torch.cuda.synchronize()


class Previews:
    """This project's per-step preview: x0, latent-to-RGB, hand-off, a consumer thread."""

    def __init__(self, side: int) -> None:
        from gradio_diffusion_preview.backends.diffusers.latent_preview import (
            LatentRGBPreviewer,
            PreviewPlan,
        )
        from gradio_diffusion_preview.channel import EventChannel

        self.plan = PreviewPlan.create(LatentRGBPreviewer("sd1", 4), side * 8, side * 8, 1, 8)
        self.channel = EventChannel(0.0)
        self.tracker = None
        self.callback_ms: list[float] = []
        self.encoded = 0
        self.consumer = threading.Thread(target=self._consume, daemon=True)
        self.consumer.start()

    def attach(self, scheduler) -> None:
        from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker

        self.tracker = X0Tracker(scheduler)

    def __call__(self, noise, timestep, sample) -> None:
        from gradio_diffusion_preview.backends.diffusers.run import _PendingStep

        started = time.perf_counter()
        estimate = self.tracker.estimate(noise, timestep, sample)
        self.channel.put(_PendingStep(0, 0, None, self.plan.preview(estimate)))
        self.callback_ms.append((time.perf_counter() - started) * 1000)

    def _consume(self) -> None:
        from gradio_diffusion_preview.preview_encoding import encode_preview

        while True:
            step = self.channel.get(timeout=1.0)
            if step is None:
                if self.channel.closed:
                    return
                continue
            encode_preview(step.pending.result())
            self.encoded += 1

    def close(self) -> None:
        self.channel.close()
        self.consumer.join(5)


def timed_ms(fn, repeats: int, sync) -> list[float]:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure_size(
    label: str, config: dict, device, dtype, steps: int, repeats: int, tiny: bool = False
) -> list[Row]:
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny

    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = Model(config, device, dtype)
    denoise(model, 2)  # warm-up
    none, every, callback_ms = [], [], []
    for _ in range(repeats):  # interleaved
        none += timed_ms(lambda: denoise(model, steps), 1, sync)
        previews = Previews(model.side)
        if cuda:
            torch.cuda.set_sync_debug_mode("error")  # a sync in the callback raises
        try:
            every += timed_ms(lambda previews=previews: denoise(model, steps, previews), 1, sync)
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
            previews.close()
        callback_ms += previews.callback_ms
    overhead = 100 * (min(every) - min(none)) / min(none)
    latent = torch.randn(1, 4, model.side, model.side, device=device, dtype=dtype)
    with torch.inference_mode():
        taesd = AutoencoderTiny().to(device, dtype).eval()
        tiny_ms = timed_ms(lambda: taesd.decode(latent), 5, sync)
        vae = AutoencoderKL(**(TINY_VAE if tiny else SD_VAE)).to(device, dtype)
        full_ms = timed_ms(lambda: vae.decode(latent), 3, sync)
    callback = statistics.median(callback_ms)
    step_ms = min(none) / steps
    note = f"{label}, {steps} steps, fp16, CFG batch 2" if cuda else f"{label} on {device}"
    return [
        Row(
            "gpu",
            f"{label}: generation, previews every step vs none",
            "ms",
            min(every),
            {"no previews": min(none)},
            f"{overhead:+.1f}%",
            "< 2%",
            overhead < 2,
            note,
        ),
        Row(
            "gpu",
            f"{label}: step callback on the generation thread (median)",
            "ms",
            callback,
            {"one UNet step": step_ms},
            "no device sync (sync debug mode: error)" if cuda else "",
            "< 0.3 ms, no sync",
            callback < 0.3 if cuda else None,
            note,
        ),
        Row(
            "gpu",
            f"{label}: tiny-decoder (TAESD architecture) preview per step",
            "ms",
            statistics.median(tiny_ms),
            {'full VAE decode per step (A1111 "Full")': statistics.median(full_ms)},
            f"1/{statistics.median(full_ms) / statistics.median(tiny_ms):.0f} of the full decode",
            note=note,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description="Question 7 on a GPU; writes gpu_results.json")
    parser.add_argument("--tiny", action="store_true", help="a tiny UNet, any device (smoke)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("No CUDA device: run this on the GPU machine (or --tiny to try it here).")
        return 2
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.float16 if cuda else torch.float32
    sizes = {"tiny UNet": TINY} if args.tiny else {"SD 1.5-size": SD15, "SDXL-size": SDXL}
    rows: list[Row] = []
    for label, config in sizes.items():
        print(f"gpu: {label}", flush=True)
        steps, repeats = (3, 1) if args.tiny else (STEPS, REPEATS)
        rows += measure_size(label, config, device, dtype, steps, repeats, args.tiny)
        if cuda:
            torch.cuda.empty_cache()
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({device})",
        "torch": torch.__version__,
        "tiny": args.tiny,
        "rows": [row.as_dict() for row in rows],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row.figure}: {row.ours:.3f} {row.unit} {row.ratio} target {row.target} {row.met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
