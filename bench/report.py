"""Writes docs/benchmarks.md from the rows and data of a benchmark run (``run.py``)."""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import cpu_threads
import frame_cost
import overhead
from rows import Row, median

GPU_RESULTS = Path(__file__).resolve().parent / "gpu_results.json"
SHARED_LOAD = 0.75  # load average per core above which the machine counts as shared


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
    from gradio_diffusion_preview.backends.diffusers.cpu_threads import choose

    device = "CUDA: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    choice = choose(None)
    backend_threads = choice.threads or "torch's own"
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores{memory}, {device} "
        f"({platform.system()} {platform.release()})",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__} "
        f"({_threads(torch.get_num_threads())}; the diffusers backend's choice here: "
        f"{backend_threads}), diffusers {diffusers.__version__}, "
        f"gradio {gradio.__version__}",
    ]


def _threads(count: int) -> str:
    return f"{count} CPU thread{'s' if count != 1 else ''}"


def cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        digits = 3 if abs(value) < 1 else 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
        return f"{value:,.{digits}f}"
    return str(value)


def met_cell(met: bool | None) -> str:
    return "—" if met is None else "**met**" if met else "**not met**"


def summary(rows: list[Row | dict]) -> list[str]:
    lines = [
        "| Figure | Unit | This project | Baselines | Comparison | Target | Met | Notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        row = row if isinstance(row, dict) else row.as_dict()
        baselines = "; ".join(f"{name}: {cell(value)}" for name, value in row["baselines"].items())
        lines.append(
            f"| {row['figure']} | {row['unit']} | {cell(row['ours'])} | {baselines or '—'} | "
            f"{row['ratio'] or '—'} | {row['target'] or '—'} | {met_cell(row['met'])} | "
            f"{row['note'] or ''} |"
        )
    return lines


def gpu_section(gpu: dict | None, when: datetime.datetime) -> list[str]:
    lines = ["## On a GPU", ""]
    if not gpu:
        return lines + [
            f"Not measured: no GPU was lent for the run of {when:%Y-%m-%d}. `bench/gpu.py` "
            "measures question 7 on a GPU machine (SD 1.5-size and SDXL-size random-weight "
            "pipelines at fp16, previews every step against none, the step callback's cost on "
            "the generation thread, a tiny-decoder preview and a full VAE decode per step) and "
            "writes `bench/gpu_results.json`; every later `make bench` keeps those figures here, "
            "dated, until a new GPU run replaces them.",
            "",
        ]
    return [
        *lines,
        f"Measured {gpu.get('date', '?')} on {gpu.get('device', '?')} by `bench/gpu.py` "
        "(kept from that run; later runs without a GPU keep these figures).",
        "",
        *summary(gpu.get("rows", [])),
        "",
    ]


def shortfalls(rows: list[Row], data: dict[str, dict]) -> list[str]:
    """ "Targets not met, and why": for each question with a target missed in this run, what
    the figure is made of and what meeting the target would take."""
    missed = []
    for row in rows:
        if row.met is False and row.question not in missed:
            missed.append(row.question)
    if not missed:
        return []
    lines = ["## Targets not met, and why", ""]
    for question in missed:
        lines.append(f"- {SHORTFALL[question](data) if question in SHORTFALL else question}")
    return [*lines, ""]


def _bytes_shortfall(data: dict[str, dict]) -> str:
    bytes_data = data.get("bytes", {})
    figures, pictures = bytes_data.get("figures", {}), bytes_data.get("pictures", {})
    ours, picture = figures.get("ours") or 0, pictures.get("ours") or 0
    tenth = (figures.get(bytes_data.get("cheapest_image", "image-webp")) or 0) / 10
    return (
        f"**Bytes per frame.** Of this project's {ours:,.0f} bytes per frame, the picture is "
        f"{picture:,.0f}: the 64 px preview as a JPEG at quality 80 with optimised Huffman "
        "tables, base64 in the event's JSON. The event-stream message around it is the other "
        f"{ours - picture:,.0f}, about 330 of them Gradio's own fields, the same for any "
        f"component. A tenth of (a) is {tenth:,.0f} bytes, less than the picture alone. "
        "Meeting it would take a lower JPEG quality (a worse picture than (a) shows), or "
        "sending previews outside Gradio's event stream (which `gradio_client` and REST users "
        "would then not get); neither is worth it. The frames are noisy early in the run by "
        "design (`bench/frames.py`), which a 64 px JPEG codes less compactly than smooth ones."
    )


def _server_cost_shortfall(data: dict[str, dict]) -> str:
    medians = data.get("server_cost", {}).get("medians_ms", {})
    ours = medians.get("ours") or 0
    cheapest = min((medians.get(fmt) or float("inf"), fmt) for fmt in ("webp", "jpeg", "png"))
    per_frame = data.get("load", {}).get("ours", {}).get("cpu_ms_per_frame")
    served = (
        f" In a served app they are a small part of a frame's cost: the server's CPU per "
        f"frame delivered under load was {per_frame:.2f} ms (below), most of it Gradio's own "
        "per-message work, which a `gr.Image` app pays as well."
        if per_frame
        else ""
    )
    return (
        f"**Server cost per frame.** {ours:.3f} ms against (a)'s {cheapest[0]:.2f} ms "
        f"({cheapest[1]}), {cheapest[0] / ours:.0f} times cheaper where 50 are asked: 50 "
        f"would leave {cheapest[0] / 50:.3f} ms. The projection of the latent, the JPEG encode "
        "(Pillow), the component's postprocess and Gradio's diff and JSON each cost a Python "
        "call's fixed 10 to 50 microseconds on a 64 px picture (see the cost of one preview "
        "frame below); the optimised Huffman tables add about 0.03 ms, bought for 15% fewer "
        "bytes on every frame." + served
    )


def _paint_shortfall(data: dict[str, dict]) -> str:
    per_frame = data.get("load", {}).get("ours", {}).get("cpu_ms_per_frame")
    cpu = f" ({per_frame:.2f} ms of server CPU per frame delivered)" if per_frame else ""
    return (
        "**The newest frame at 32 clients.** On this 2-core machine the server, the 31 "
        "protocol clients and Chromium share the two cores, and the server alone needs most "
        f"of one at 32 clients{cpu}: Gradio's queue, its streaming diff and the event stream "
        "for every message, plus, for a plain generator, a round trip to a worker thread per "
        "yield (an `async def` handler with `astream()` avoids it; its rows show what that "
        "changes here). When the cores "
        "are busy a frame waits, and the tail passes 100 ms. No client builds a backlog: a client "
        "that falls behind skips to the newest frame (latest wins), where (a) queues every "
        "frame and falls seconds behind. A server with cores to spare, or fewer frames per "
        "second per client (`stream(..., min_interval=...)`), keeps the tail lower."
    )


def _footprint_shortfall(data: dict[str, dict]) -> str:
    return (
        "**Memory over 1,000 frames.** See `bench/footprint.py`: resident memory after a "
        "warm-up round and after five more rounds of runs. Each run there is a new Gradio "
        "session, and Gradio keeps every session's records (its config copy and the last value "
        "shown, about 20 KB a run, up to `state_session_capacity` sessions); the rest is the "
        "allocator settling in, which shrinks round by round."
    )


def _overhead_shortfall(data: dict[str, dict]) -> str:
    return (
        "**Generation overhead.** The previews' work on the generation thread (the x0 estimate "
        "and the step callback: the projection and the hand-off) took 2% or more of the runs' "
        "time. Their cost per step is in the cost of one preview frame (below); a model whose "
        "steps are shorter than about 15 ms (a small model on a fast GPU) would reach 2% with "
        "a preview every step."
    )


def _cpu_threads_shortfall(data: dict[str, dict]) -> str:
    paint = data.get("cpu_threads", {}).get("paint", {})
    server, handler = paint.get("click_to_step_one_ms"), paint.get("click_to_handler_ms")
    step = paint.get("step_ms")
    split = (
        f" In this run (medians) the handler started {median(handler):.0f} ms after the "
        f"click and step 1 was done {median(server):.0f} ms after it (one step "
        f"{step:.0f} ms)."
        if server and handler and step
        else ""
    )
    return (
        "**CPU threads.** Under contention a run gets at best its share of the cores (one "
        "thread among two busy loops on two cores: about 1.5x); more than 2x means the "
        "machine was busier still (other work beside the hog: see the load average above). "
        "Click to first preview is the request's way in (the page's queue join and Gradio's "
        "queue up to the handler, then the request's checks, the pipeline's call setup and "
        "text encoding), step 1, and the preview's way to the page (encode, Gradio's event "
        "stream, decode, paint)." + split
    )


SHORTFALL = {
    "bytes": _bytes_shortfall,
    "server_cost": _server_cost_shortfall,
    "paint": _paint_shortfall,
    "footprint": _footprint_shortfall,
    "overhead": _overhead_shortfall,
    "cpu_threads": _cpu_threads_shortfall,
}


def write_report(
    rows: list[Row],
    data: dict[str, dict],
    gpu: dict | None,
    when: datetime.datetime,
    load: float,
    started: float,
    tiny: bool = False,
) -> str:
    cores = os.cpu_count() or 1
    shared = load > SHARED_LOAD * cores
    frames = data.get("frames", {}).get("frames")
    callback = frame_cost.fmt(frames[next(iter(frames))]["callback"]) if frames else "n/a"
    lines = [
        "# Benchmarks",
        "",
        "What users feel of the step previews (bytes per frame, step to paint, many visitors, "
        "footprint, generation overhead), each beside what they would use instead, measured in "
        "the same run by `bench/run.py` (`make bench`), which rewrites this file and "
        "`bench/results.json`. Baselines are real plain-Gradio apps served on loopback "
        "(`bench/apps.py`): (a) a generator yielding PIL frames into `gr.Image` (each format "
        "tried, the cheapest kept), (b) ComfyUI-style 512 px JPEG quality 95 per frame, (c) "
        "AUTOMATIC1111-style polling of a PNG made every 10 steps, once a second.",
        "",
        f"- Date: {when:%Y-%m-%d %H:%M %Z}",
        *machine(),
        f"- Load average while measuring: {load:.2f} (1 min, {cores} cores)",
        f"- Whole benchmark: {time.monotonic() - started:.0f} s" + (" (tiny mode)" if tiny else ""),
        "",
    ]
    if shared:
        lines += [
            f"> **The machine was shared** with other work during this run (load average "
            f"{load:.1f} on {cores} cores): times and latencies are noisy and pessimistic. "
            "Byte counts and file counts do not depend on load. Re-run `make bench` on a quiet "
            "machine for clean figures.",
            "",
        ]
    lines += [
        "## Summary",
        "",
        *summary(rows),
        "",
        *shortfalls(rows, data),
        *gpu_section(gpu, when),
    ]
    if frames:
        lines.append(frame_cost.section(frames))
    if "overhead" in data:
        lines.append(overhead.section(data["overhead"]["generation"], callback, tiny))
    if "cpu_threads" in data:
        lines.append(cpu_threads.section(data["cpu_threads"]))
    lines += data.get("ray_hop", {}).get("lines", [])
    lines += [
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
        "quality 80, optimised Huffman tables).",
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
        "- Bytes per frame: one client runs a 30-step generation at 10 steps/s against each "
        "app; every byte received for the frames counts (event-stream messages, the image files "
        "the page fetches, the polls), compressed as on the wire (the client asks for gzip and "
        "brotli like Chromium), headers included, divided by the frames shown. All apps show the "
        "same pictures (`bench/frames.py`) at the same displayed size, 512 px: this project "
        "sends the 64 px latent-resolution preview and the browser scales it.",
        "- Server cost: the same latent and the same latent-to-RGB projection for both; this "
        "project adds its JPEG data URL, the component's postprocess, Gradio's diff and JSON; "
        "(a) adds the 512 px PIL image, `gr.Image.postprocess` (encode, hash, cache file), its "
        "diff and JSON, and reading the file back for the page's fetch.",
        "- Step to paint: a page script (no frontend change) watches the preview `<img>`; when "
        "its source changes it waits for the decode and the next animation frame, records the "
        "time, and reads the step from the frame's marker block; step times come from the "
        "app's step log, the same clock. At 32 clients one Chromium page is measured and 31 "
        "more clients run through the queue protocol (their frames' arrival is measured).",
        "- Load and footprint: the server's own CPU time and resident memory from `/proc`, its "
        "files in its own Gradio cache folder. Every app allows concurrent runs "
        "(`default_concurrency_limit=None`); runs are paced, not computed.",
        "- CPU threads: torch work in the benchmark's own process and its apps uses the "
        "diffusers backend's thread choice (`OMP_NUM_THREADS`, set by `bench/run.py`). The "
        "contention rows run the bundled model in two worker processes, one with the "
        "backend's choice and one with torch's defaults; each round runs both quiet, then "
        "both while a hog process keeps every core busy. Click to first preview serves the "
        "bundled model (`apps.py`'s `bundled` app) to Chromium and times, in the page, the "
        "click on Generate to the first preview painted; one step is the median time between "
        "steps, from the backend's step listener.",
        "",
    ]
    return "\n".join(lines)
