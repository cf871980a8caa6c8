"""What the Ray Serve hop adds to each preview frame, beside the same frame in-process.

    .venv/bin/python bench/ray_hop.py     # alone: prints the rows as a table and as JSON

``make bench`` (``bench/run.py``) runs it and writes ``markdown(rows)`` into docs/benchmarks.md.
``measure()`` returns the rows: ``{figure, this_project, baseline,
ratio, target, met, unit, note}``. It starts a local Ray instance (loopback, 2 CPUs, no
dashboard) with one Serve replica hosting ``FrameBackend`` (this module is also the plugin the
replica loads), and measures:

- the latency of a preview, from the backend yielding it to the caller holding it: through the
  ``ray`` backend (replica thread -> event loop -> Serve stream -> caller) and in-process (the
  backend's thread -> the latest-wins channel -> the caller, as ``stream()`` runs it). Each
  preview carries the time it was made in its first pixels, so the clock is read once on each
  side of the hop (one machine, one clock). Steps are paced like a fast GPU model's so no frame
  is coalesced;
- the wire formats (``serving/wire.py``): per frame, the replica's encode plus the caller's
  decode plus Ray's serialisation of the item (``ray.put``/``ray.get``), and the bytes sent, for
  previews as raw arrays or JPEG and final images as raw arrays or PNG.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    Finished,
    ModelInfo,
    RunControl,
    Started,
    Step,
    hookimpl,
)

HERE = Path(__file__).resolve().parent
APP = "bench-ray-hop"
STEP_SECONDS = 0.02  # a fast GPU model's step (SD-Turbo at 512 px is about this on an A100)
FRAMES = 60
PREVIEW_SIDES = (64, 512)  # a latent-size preview (SD 1.x), and a full-size one (TAESD)
FINAL_SIDE = 512
TARGET_MS = 10.0  # a fifth of a 50 ms step: previews stay live on a fast GPU


class FrameBackend(Backend):
    """Yields ``steps`` previews of ``options.side`` px, one every ``options.pace`` seconds,
    each stamped with the time it was made; then a ``FINAL_SIDE`` px image."""

    id = "bench-frames"
    display_name = "Benchmark frames"
    location = "local"
    capabilities = Capabilities(
        default_size=(FINAL_SIDE, FINAL_SIDE),
        steps_range=(1, 1000),
        options={"side": "preview side in px", "pace": "seconds between previews"},
    )

    def models(self):
        return [ModelInfo(id="frames")]

    def generate(self, request, control):
        side, pace = int(request.options.get("side", 64)), float(request.options["pace"])
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        yield Started(request.steps, "frames", [request.seed], request.width, request.height)
        for step in range(1, request.steps + 1):
            if control.wait_cancelled(pace):
                return
            preview = frame.copy()
            preview[0, :3].reshape(-1)[:8] = np.frombuffer(
                np.float64(time.time()).tobytes(), np.uint8
            )
            yield Step(step, request.steps, preview)
        image = PIL.Image.fromarray(
            rng.integers(0, 255, (request.height, request.width, 3), np.uint8)
        )
        yield Finished([image], [request.seed])


@hookimpl
def register_backends(register):
    register(FrameBackend())


def _stamp(preview: np.ndarray) -> float:
    return float(np.frombuffer(np.ascontiguousarray(preview[0, :3]).reshape(-1)[:8].tobytes())[0])


def _latencies(backend: Backend, side: int) -> list[float]:
    """Milliseconds from each preview's making to the caller holding it, read as ``stream()``
    reads a backend: on its own thread, through the latest-wins channel."""
    from gradio_diffusion_preview.request import build_request, validate_request
    from gradio_diffusion_preview.runner import BackendRunner

    fields = {"prompt": "frames", "steps": FRAMES, "seed": 1}
    fields["options"] = {"side": side, "pace": STEP_SECONDS}
    request = validate_request(build_request(backend, fields), backend)
    control = RunControl()
    runner = BackendRunner(backend.id, lambda: backend.generate(request, control), control).start()
    seen = []
    while (event := runner.channel.get(timeout=30)) is not None:
        if isinstance(event, Step):
            seen.append((time.time() - _stamp(np.asarray(event.preview))) * 1000)
    runner.stop()
    return seen[5:]  # after the first frames (connection, caches)


def _format_costs(side: int, fmt: str, final: bool) -> tuple[float, int]:
    """(ms per item: encode + Ray serialisation round trip + decode, bytes in the object)."""
    import ray

    from gradio_diffusion_preview.serving.wire import from_wire, to_wire

    rng = np.random.default_rng(1)
    # A smooth image (as a real preview or final image is), not noise, so the codecs work fairly.
    yy, xx = np.mgrid[0:side, 0:side]
    pixels = np.stack([xx, yy, (xx + yy) // 2], -1) * 255 // max(side, 1)
    pixels = (pixels + rng.integers(0, 8, pixels.shape)).astype(np.uint8)
    if final:
        event = Finished([PIL.Image.fromarray(pixels)], [1])
        wire_of = lambda: to_wire(event, "array", fmt)  # noqa: E731
    else:
        event = Step(1, 10, pixels)
        wire_of = lambda: to_wire(event, fmt, "array")  # noqa: E731
    times, size = [], 0
    for _ in range(25):
        start = time.perf_counter()
        wire = wire_of()
        back = from_wire(ray.get(ray.put(wire)))
        if final:
            back.images[0].load()
        else:
            np.asarray(back.preview)
        times.append((time.perf_counter() - start) * 1000)
    payload = wire["images"][0] if final else wire["preview"]
    size = payload.nbytes if isinstance(payload, np.ndarray) else len(payload.data)
    return statistics.median(times[3:]), size


def _row(figure, this, baseline, target, unit, note, met=None):
    ratio = round(this / baseline, 2) if baseline else None
    if met is None:
        met = None if target is None else this <= target
    return {
        "figure": figure,
        "this_project": round(this, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": ratio,
        "target": target,
        "met": met,
        "unit": unit,
        "note": note,
    }


def measure() -> list[dict]:
    """Start a local Ray, measure, shut it down; the rows for the benchmark driver."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])
    )
    import ray
    from ray import serve

    from gradio_diffusion_preview.backends.ray.backend import RayBackend
    from gradio_diffusion_preview.serving import ServeSettings, run

    started_here = not ray.is_initialized()
    for attempt in range(2 if started_here else 0):
        # Ray gives a new node a fixed 30 s to register; a loaded machine can miss it once.
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
            break
        except Exception as error:
            if attempt or "timed out during startup" not in str(error):
                raise
            ray.shutdown()
    rows = []
    try:
        run(
            ServeSettings(
                app=APP, backend="bench-frames", plugins=["ray_hop"], num_gpus=0, num_cpus=0
            )
        )
        remote, local = RayBackend.for_app(APP, id="bench-ray"), FrameBackend()
        for side in PREVIEW_SIDES:
            _latencies(remote, side)  # warm: the first run connects and learns the backend
            hop = statistics.median(_latencies(remote, side))
            here = statistics.median(_latencies(local, side))
            rows.append(
                _row(
                    f"Preview latency through the Ray hop, {side} px (array)",
                    hop,
                    here,
                    TARGET_MS,
                    "ms",
                    f"median of {FRAMES - 5} frames, one every {STEP_SECONDS * 1000:g} ms; "
                    "baseline: the same backend in-process. Added per frame: "
                    f"{hop - here:.2f} ms",
                )
            )
        for side in PREVIEW_SIDES:
            array_ms, array_bytes = _format_costs(side, "array", final=False)
            jpeg_ms, jpeg_bytes = _format_costs(side, "jpeg", final=False)
            rows.append(
                _row(
                    f"Preview wire cost, {side} px: raw array (vs JPEG q90)",
                    array_ms,
                    jpeg_ms,
                    None,
                    "ms",
                    f"encode + Ray put/get + decode; bytes: array {array_bytes}, JPEG {jpeg_bytes}",
                    met=array_ms <= jpeg_ms,
                )
            )
        array_ms, array_bytes = _format_costs(FINAL_SIDE, "array", final=True)
        png_ms, png_bytes = _format_costs(FINAL_SIDE, "png", final=True)
        rows.append(
            _row(
                f"Final image wire cost, {FINAL_SIDE} px: raw array (vs PNG)",
                array_ms,
                png_ms,
                None,
                "ms",
                f"encode + Ray put/get + decode; bytes: array {array_bytes}, PNG {png_bytes}",
                met=array_ms <= png_ms,
            )
        )
    finally:
        serve.delete(APP)
        if started_here:
            serve.shutdown()
            ray.shutdown()
    return rows


def markdown(rows: list[dict]) -> list[str]:
    """The section of docs/benchmarks.md that ``bench/run.py`` (``make bench``) writes."""
    lines = [
        "## The Ray Serve hop",
        "",
        "A preview's latency from the backend yielding it to the caller holding it, through the "
        "`ray` backend (one local Serve replica on loopback) beside the same backend in-process; "
        "and what each wire format costs per item (`bench/ray_hop.py`). Medians.",
        "",
        f"- Measured: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, load average "
        f"{os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores",
        "",
        "| Figure | This project | Baseline | Ratio | Target | Met | Unit | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = ["" if row[key] is None else str(row[key]) for key in row]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> int:
    import json

    rows = measure()
    print("\n".join(markdown(rows)))
    json.dump(rows, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
