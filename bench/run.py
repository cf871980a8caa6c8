"""Benchmarks of the diffusers backend's step previews; writes docs/benchmarks.md.

    .venv/bin/python bench/run.py            # `make bench`; a few minutes on a 2-core CPU
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
does not depend on its weights); no weights are downloaded. Then a real generation with the
tiny SD 1.x-structure pipeline, previews on every step versus none, consumed straight from the
backend and through ``stream()`` (which also encodes each preview). Last, the Ray Serve hop
(``ray_hop.py``): a preview's added latency through the ``ray`` backend beside in-process.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks.md"
FULL = os.environ.get("BENCH_FULL", "") not in ("", "0")
SIZES = {"SD 1.x (512 px)": (64, 64), "SDXL (1024 px)": (128, 128)}
GEN_SIZE, GEN_STEPS, GEN_REPEATS = 512, 10, 7


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


def machine() -> list[str]:
    import diffusers
    import gradio
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    device = "CUDA: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores{memory}, {device} "
        f"({platform.system()} {platform.release()})",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), diffusers {diffusers.__version__}, "
        f"gradio {gradio.__version__}",
    ]


def sd_scheduler():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    scheduler.set_timesteps(20)
    return scheduler


def bench_frames(results: dict[str, dict[str, list[float] | None]]) -> None:
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    taesd = AutoencoderTiny().eval()  # madebyollin/taesd's architecture
    vae = AutoencoderKL(  # Stable Diffusion's VAE architecture
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    ).eval()
    with tempfile.TemporaryDirectory(prefix="gdp-bench-cache-") as cache:
        for label, (h, w) in SIZES.items():
            print(f"frames: {label}", flush=True)
            results[label] = bench_frame_size(h, w, taesd, vae, cache)


def bench_frame_size(h: int, w: int, taesd, vae, cache: str) -> dict[str, list[float] | None]:
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
    row["x0"] = timed(lambda: tracker.estimate(noise, timestep, sample), 300)
    row["rgb"] = timed(lambda: plan.preview(x0).result(), 300)
    row["callback"] = timed(callback_work, 300)
    row["encode"] = timed(lambda: encode_preview(array), 200)
    row["end_to_end"] = timed(end_to_end, 200)
    row["preview_size"] = [float(plan.size[0]), float(plan.size[1])]

    with torch.inference_mode():
        tiny_plan = PreviewPlan.create(TinyDecoderPreviewer(taesd, "random"), w * 8, h * 8, 1, 8)
        row["taesd"] = timed(
            lambda: encode_preview(tiny_plan.preview(x0).result()), 3 if h <= 64 else 1, warmup=0
        )
        row["full_vae"] = None
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


def bench_generation(results: dict[str, list[float]]) -> None:
    from gradio_diffusion_preview import GenerationRequest, RunControl, stream, validate_request
    from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
    from gradio_diffusion_preview.backends.diffusers.tiny import (
        build_tiny_pipeline,
        default_tiny_model_dir,
    )
    from gradio_diffusion_preview.events import Finished

    model = str(build_tiny_pipeline("sd15", default_tiny_model_dir("sd15")))
    backend = DiffusersBackend()
    fields = {
        "prompt": "a lighthouse",
        "model": model,
        "steps": GEN_STEPS,
        "seed": 1,
        "width": GEN_SIZE,
        "height": GEN_SIZE,
    }

    def direct(previewer: str) -> Callable[[], None]:
        request = validate_request(
            GenerationRequest(**fields, options={"previewer": previewer}), backend
        )

        def go() -> None:
            events = list(backend.generate(request, RunControl()))
            assert isinstance(events[-1], Finished), events[-1]

        return go

    def through_stream(min_interval: float) -> Callable[[], None]:
        def go() -> None:
            states = list(stream(backend, min_interval=min_interval, **fields))
            assert states[-1].status == "done", states[-1].message

        return go

    modes = {
        "none": direct("none"),
        "latent_rgb": direct("latent_rgb"),
        "stream_every": through_stream(0.0),
        "stream_default": through_stream(0.05),
    }
    print("generation: warm-up", flush=True)
    direct("none")()
    stamps: list[float] = []
    backend.step_listeners.append(lambda iteration, total: stamps.append(time.perf_counter()))
    direct("none")()
    results["step"] = [(b - a) * 1000 for a, b in zip(stamps, stamps[1:], strict=False)]
    backend.step_listeners.clear()
    for repeat in range(GEN_REPEATS):  # interleaved, so background load hits every mode alike
        for name, go in modes.items():
            print(f"generation: {name} #{repeat + 1}", flush=True)
            results.setdefault(name, []).extend(timed(go, 1, warmup=0))


def bench_ray_hop() -> list[str]:
    """The Ray Serve hop's section (``ray_hop.py``), or why it was not measured."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return [
            "## The Ray Serve hop",
            "",
            "Not measured: Ray Serve is not installed (`pip install "
            "'gradio-diffusion-preview[ray]'`).",
            "",
        ]
    import ray_hop  # bench/ is on sys.path when this file runs as a script

    return ray_hop.markdown(ray_hop.measure())


def write_report(frames, generation, started: float) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    labels = list(SIZES)
    previews = {
        label: "x".join(str(int(v)) for v in frames[label]["preview_size"]) for label in labels
    }

    def row(name: str, key: str, thread: str) -> str:
        cells = " | ".join(fmt(frames[label].get(key)) for label in labels)
        return f"| {name} | {cells} | {thread} |"

    none = min(generation["none"])  # the fastest run is the least disturbed by other load
    lines = [
        "# Benchmarks",
        "",
        "Step previews of the local diffusers backend, measured by `bench/run.py` (`make bench`),",
        "which rewrites this file. Per-frame times are medians, in milliseconds.",
        "",
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        *machine(),
        f"- Load average while measuring: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)"
        if load
        else "- Load average: unknown",
        f"- Whole benchmark: {time.monotonic() - started:.0f} s",
        "",
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
    lines += [
        "## Generation with and without previews",
        "",
        f"The tiny random-weight SD 1.x-structure pipeline (`tiny.py`), {GEN_SIZE}x{GEN_SIZE} "
        f"(latent 4x{GEN_SIZE // 8}x{GEN_SIZE // 8}), {GEN_STEPS} Euler steps, guidance 7.5, "
        f"{GEN_REPEATS} runs of each mode, interleaved; wall time from the request to the "
        "final image. The fastest run of each mode is the one least disturbed by other work "
        "on the machine, so it is the one compared.",
        "",
        "| Mode | Fastest (ms) | Median (ms) | Slowest (ms) | Fastest vs. no previews |",
        "|---|---|---|---|---|",
    ]
    names = {
        "none": "`previewer=none`, events read from `generate()`",
        "latent_rgb": "`previewer=latent_rgb` (default), a preview every step",
        "stream_every": "`stream(..., min_interval=0)`: every preview also JPEG-encoded",
        "stream_default": "`stream(...)` with the default `min_interval=0.05`",
    }
    for key, name in names.items():
        runs = generation[key]
        lines.append(
            f"| {name} | {min(runs):.0f} | {statistics.median(runs):.0f} | "
            f"{max(runs):.0f} | {100 * (min(runs) - none) / none:+.1f}% |"
        )
    lines += [
        "",
        f"The step callback adds about {fmt(frames[labels[0]]['callback'])} ms to a step "
        f"that takes about {fmt(generation['step'])} ms here, well inside the run-to-run "
        "spread; "
        "a real model's step is slower still (seconds on a CPU, tens of milliseconds on a GPU), "
        "so the relative cost only shrinks.",
        "",
        "## How the previews are made",
        "",
        "- Each step's preview shows the model's current estimate of the final image (x0), not "
        "the noisy latent: the per-run scheduler's `step` is wrapped to compute x0 from the "
        "sample, the model output and that step's noise level (alpha, sigma, EDM or flow-"
        "matching form; see `backends/diffusers/x0.py`).",
        "- The default previewer maps latent channels to RGB with published per-family "
        "factors (SD 1.x, SDXL, SD3, Flux; sources in `backends/diffusers/latent_preview.py`), "
        "on the device, at latent resolution; a batch is tiled into one preview.",
        "- The step callback hands the small uint8 array to a latest-wins channel and returns; "
        "JPEG encoding (and a TAESD decode, when chosen) happens on the consumer's thread, and "
        "only for the newest step when the consumer is behind.",
        "",
        "## Method",
        "",
        "- The step callback's work is timed with the backend's own functions (`X0Tracker."
        "estimate`, `PreviewPlan.preview`, the `EventChannel` hand-off), 300 times after a "
        "warm-up; end to end adds `PendingPreview.result()` and `encode_preview` (JPEG, "
        "quality 80).",
        "- x0 is estimated for an Euler (sigma-parameterised) scheduler; the alpha and flow "
        "forms are the same few element-wise operations.",
        "- The TAESD-architecture decoder (`diffusers.AutoencoderTiny()` defaults) and the full "
        "VAE (Stable Diffusion's `AutoencoderKL` architecture) have random weights: cost does "
        "not depend on the weights, and nothing is downloaded. The full decode is timed once "
        "after a warm-up on a small latent.",
        "- `gr.Image`-style frames use Gradio's own `processing_utils.save_pil_to_cache`, which "
        "`gr.Image` calls for every value it sends: encode, hash the bytes, write a file in a "
        "new cache folder.",
        "- On a GPU the callback's work is asynchronous: the projection is queued on the device "
        "and copied to pinned host memory without a sync; the consumer thread waits for it.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    started = time.monotonic()
    frames: dict[str, dict[str, list[float] | None]] = {}
    generation: dict[str, list[float]] = {}
    bench_frames(frames)
    bench_generation(generation)
    ray_hop = bench_ray_hop()
    report = write_report(frames, generation, started) + "\n" + "\n".join(ray_hop)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(report)
    print(report)
    print(f"wrote {OUTPUT.relative_to(ROOT)} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
