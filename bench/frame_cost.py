"""The cost of one preview frame inside the process (the "Cost of one preview frame" table).

    BENCH_FULL=1 .venv/bin/python bench/run.py   # also the SDXL-size full VAE decode (slow)

What is measured, per preview frame, for an SD 1.x-size latent (4x64x64, a 512 px image) and an
SDXL-size latent (4x128x128, 1024 px):

- the work the step callback does on the generation thread: the x0 estimate (in the scheduler
  step wrapper), the latent-to-RGB projection, tiling, conversion to uint8 and the copy to the
  host, and the hand-off into the latest-wins channel;
- one preview end to end: that, plus what the consumer thread does (materialise the array,
  encode a JPEG data URL with ``encode_preview``);
- for comparison, per frame: a TAESD-architecture tiny decoder (run on the consumer thread), a
  full VAE decode of the latent (AUTOMATIC1111's "Full" live preview), and what a ``gr.Image``
  output does with each frame (encode WebP or PNG, hash it, write it into the Gradio cache).

The decoders have random weights with the released architectures (the cost of a convolution
does not depend on its weights); no weights are downloaded.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

FULL = os.environ.get("BENCH_FULL", "") not in ("", "0")
SIZES = {"SD 1.x (512 px)": (64, 64), "SDXL (1024 px)": (128, 128)}
REPEATS = {"many": 300, "some": 200, "few": 5}


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Milliseconds per call, ``repeats`` times after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def fmt(times: list[float] | None) -> str:
    if not times:
        return "not measured"
    median = statistics.median(times)
    digits = 3 if median < 1 else 2 if median < 10 else 1 if median < 100 else 0
    return f"{median:.{digits}f}"


def sd_scheduler():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    scheduler.set_timesteps(20)
    return scheduler


def bench_frames(results: dict[str, dict[str, list[float] | None]], tiny: bool = False) -> None:
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    taesd = vae = None  # tiny mode times no decoder: building SD's VAE alone takes seconds
    if not tiny:
        taesd = AutoencoderTiny().eval()  # madebyollin/taesd's architecture
        vae = AutoencoderKL(  # Stable Diffusion's VAE architecture
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        ).eval()
    with tempfile.TemporaryDirectory(prefix="gdp-bench-cache-") as cache:
        for label, (h, w) in list(SIZES.items())[: 1 if tiny else None]:
            print(f"frames: {label}", flush=True)
            results[label] = bench_frame_size(h, w, taesd, vae, cache, tiny)


def bench_frame_size(
    h: int, w: int, taesd, vae, cache: str, tiny: bool = False
) -> dict[str, list[float] | None]:
    """Every per-frame measurement for a ``4 x h x w`` latent (an ``8h x 8w`` image)."""
    import numpy as np
    import PIL.Image
    import torch
    from gradio import processing_utils

    from gradio_diffusion_preview.backends.diffusers.latent_preview import (
        LatentRGBPreviewer,
        PreviewPlan,
        TinyDecoderPreviewer,
    )
    from gradio_diffusion_preview.backends.diffusers.run import _PendingStep
    from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker
    from gradio_diffusion_preview.channel import EventChannel
    from gradio_diffusion_preview.preview_encoding import encode_preview

    row: dict[str, list[float] | None] = {}
    many, some = (REPEATS["few"],) * 2 if tiny else (REPEATS["many"], REPEATS["some"])
    scheduler = sd_scheduler()
    tracker = X0Tracker(scheduler)
    sample = torch.randn(1, 4, h, w) * scheduler.init_noise_sigma
    noise = torch.randn(1, 4, h, w)
    for timestep in scheduler.timesteps[:6]:  # a run six steps in
        scheduler.scale_model_input(sample, timestep)
        sample = scheduler.step(noise, timestep, sample, return_dict=False)[0]
    plan = PreviewPlan.create(LatentRGBPreviewer("sd1", 4), w * 8, h * 8, 1, 8)
    channel = EventChannel(0.0)
    x0 = tracker.estimate(noise, timestep, sample)

    def callback_work() -> None:
        estimate = tracker.estimate(noise, timestep, sample)
        channel.put(_PendingStep(6, 20, None, plan.preview(estimate)))
        channel.get(timeout=0)

    def end_to_end() -> str:
        estimate = tracker.estimate(noise, timestep, sample)
        channel.put(_PendingStep(6, 20, None, plan.preview(estimate)))
        return encode_preview(channel.get(timeout=0).pending.result())

    array = plan.preview(x0).result()
    row["x0"] = timed(lambda: tracker.estimate(noise, timestep, sample), many)
    row["rgb"] = timed(lambda: plan.preview(x0).result(), many)
    row["callback"] = timed(callback_work, many)
    row["encode"] = timed(lambda: encode_preview(array), some)
    row["end_to_end"] = timed(end_to_end, some)
    row["preview_size"] = [float(plan.size[0]), float(plan.size[1])]

    row["taesd"] = row["full_vae"] = None
    if not tiny:  # the decoders take seconds per frame on a CPU
        with torch.inference_mode():
            tiny_plan = PreviewPlan.create(
                TinyDecoderPreviewer(taesd, "random"), w * 8, h * 8, 1, 8
            )
            row["taesd"] = timed(
                lambda: encode_preview(tiny_plan.preview(x0).result()),
                3 if h <= 64 else 1,
                warmup=0,
            )
            if h <= 64 or FULL:
                vae.decode(torch.randn(1, 4, 16, 16))  # warm up the kernels on a small latent
                row["full_vae"] = timed(lambda: vae.decode(x0 / 0.18215), 1, warmup=0)

    # A decoded image compresses far better than noise: encode a smooth one.
    noise_image = PIL.Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (h // 4, w // 4, 3), dtype=np.uint8)
    )
    image = noise_image.resize((w * 8, h * 8), PIL.Image.BICUBIC)
    row["webp_file"] = timed(
        lambda: processing_utils.save_pil_to_cache(image, cache, format="webp"), 5
    )
    row["png_file"] = timed(
        lambda: processing_utils.save_pil_to_cache(image, cache, format="png"), 5
    )
    return row


def section(frames: dict[str, dict[str, list[float] | None]]) -> str:
    """The "Cost of one preview frame" section of docs/benchmarks.md."""
    labels = list(frames)
    previews = {
        label: "x".join(str(int(v)) for v in frames[label]["preview_size"]) for label in labels
    }

    def row(name: str, key: str, thread: str) -> str:
        cells = " | ".join(fmt(frames[label].get(key)) for label in labels)
        return f"| {name} | {cells} | {thread} |"

    lines = [
        "## Cost of one preview frame",
        "",
        "Preview sizes: "
        + ", ".join(f"{label}: {previews[label]} px" for label in labels)
        + " (latent resolution; one tile per image).",
        "",
        f"| Per frame (ms) | {' | '.join(labels)} | Thread |",
        f"|---|{'---|' * len(labels)}---|",
        row("x0 estimate (scheduler step wrapper)", "x0", "generation"),
        row(
            "Latent-to-RGB preview: projection, tile, uint8, copy off the device",
            "rgb",
            "generation",
        ),
        row(
            "**Step callback total** (x0 + preview + latest-wins hand-off)",
            "callback",
            "generation",
        ),
        row("JPEG data URL of the preview (`encode_preview`)", "encode", "consumer"),
        row("**One preview end to end** (callback + materialise + data URL)", "end_to_end", "both"),
        row("TAESD-architecture tiny decoder, full resolution, + data URL", "taesd", "consumer"),
        row('Full VAE decode per step (AUTOMATIC1111 "Full")', "full_vae", "generation"),
        row("`gr.Image`-style frame: WebP encode + hash + file write", "webp_file", "consumer"),
        row("`gr.Image`-style frame: PNG encode + hash + file write", "png_file", "consumer"),
        "",
    ]
    if not FULL:
        lines += [
            "The SDXL-size full VAE decode is not measured by default (it takes minutes "
            "on a CPU); `BENCH_FULL=1 .venv/bin/python bench/run.py` measures it.",
            "",
        ]
    return "\n".join(lines)


def measure(pool=None, tiny: bool = False) -> tuple[list, dict]:
    """No summary rows (these figures have no baseline app); the section's data."""
    frames: dict[str, dict[str, list[float] | None]] = {}
    bench_frames(frames, tiny)
    return [], {"frames": frames}
