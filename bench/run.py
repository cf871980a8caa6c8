"""The benchmark driver behind ``make bench``: runs every question's script except the GPU one
and writes docs/benchmarks.md and bench/results.json (the same rows, each with ``met``).

    .venv/bin/python bench/run.py                 # `make bench`; a few minutes on a 2-core CPU
    .venv/bin/python bench/run.py --tiny --out D  # every piece in a tiny mode, output in D
    BENCH_FULL=1 .venv/bin/python bench/run.py    # also the SDXL-size full VAE decode (slow)
    .venv/bin/python bench/run.py --only overhead # that question again, spliced in (partial.py)

One script per question (each has ``measure(pool, tiny) -> (rows, data)``):
``wire_bytes`` (1, bytes per frame), ``server_cost`` (2), ``paint`` (3, Chromium),
``load`` (4, 32 clients), ``footprint`` (5, 1,000 frames), ``overhead`` (6), ``frame_cost``
(the per-frame costs inside the process), ``cpu_threads`` (a run under CPU contention with the
diffusers backend's thread choice and with torch's defaults, click to first preview painted)
and ``ray_hop`` (the Ray Serve hop, when Ray is installed). ``gpu.py`` (7) runs on a GPU
machine and leaves bench/gpu_results.json, whose dated figures every later run keeps in the
report.
The apps under load are served on loopback only (``apps.py``, ``loopback.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _torch_threads_as_the_backend_chooses() -> None:
    """torch work in this process and the apps it starts uses the diffusers backend's thread
    choice, as the backend's own runs do (set before anything imports torch; a value already
    set is kept). ``cpu_threads`` runs its workers without it, to compare with torch's own."""
    from gradio_diffusion_preview.backends.diffusers.cpu_threads import automatic_threads

    os.environ.setdefault("OMP_NUM_THREADS", str(automatic_threads()))


_torch_threads_as_the_backend_chooses()

import cpu_threads  # noqa: E402
import footprint  # noqa: E402
import frame_cost  # noqa: E402
import load  # noqa: E402
import overhead  # noqa: E402
import paint  # noqa: E402
import server_cost  # noqa: E402
import wire_bytes  # noqa: E402
from loopback import ServerPool  # noqa: E402
from report import GPU_RESULTS, write_report  # noqa: E402
from rows import Row  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP_KINDS = ("ours", "ours-async", *wire_bytes.IMAGE_KINDS, "comfy", "a1111")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks; write the report.")
    parser.add_argument("--tiny", action="store_true", help="every piece, tiny and fast")
    parser.add_argument("--out", type=Path, help="folder for the report (default: the repo's)")
    parser.add_argument(
        "--only", help="measure only this question (overhead) and splice it into the last report"
    )
    args = parser.parse_args(argv)
    if args.only:
        from partial import refresh

        print(refresh(args.only, args.out or ROOT, args.tiny))
        return 0
    started = time.monotonic()
    load_before = os.getloadavg()
    rows: list[Row] = []
    data: dict[str, dict] = {}
    pool = ServerPool()
    try:
        pool.start(("ours", "image-webp") if args.tiny else APP_KINDS)
        for name, script in (("bytes", wire_bytes), ("server_cost", server_cost)):
            rows += attempt(name, lambda script=script: script.measure(pool, args.tiny), data)
            write_results(args, rows, data, load_before, started, complete=False)
        image_kind = data.get("bytes", {}).get("cheapest_image", "image-webp")
        for name, script in (("paint", paint), ("load", load), ("footprint", footprint)):
            rows += attempt(
                name, lambda script=script: script.measure(pool, args.tiny, image_kind), data
            )
            write_results(args, rows, data, load_before, started, complete=False)
    finally:
        pool.close()
    if not args.tiny:  # Ray's start alone takes seconds
        data["ray_hop"] = {"lines": ray_hop_section()}
    with_no_apps = (("frames", frame_cost), ("overhead", overhead), ("cpu_threads", cpu_threads))
    for name, script in with_no_apps:
        rows += attempt(name, lambda script=script: script.measure(None, args.tiny), data)
        if name != with_no_apps[-1][0]:
            write_results(args, rows, data, load_before, started, complete=False)
    report = write_results(args, rows, data, load_before, started, complete=True)
    print(report)
    print(f"wrote docs/benchmarks.md and bench/results.json in {time.monotonic() - started:.0f} s")
    return 0


def write_results(args, rows: list[Row], data: dict, load_before, started: float, complete: bool):
    """Writes docs/benchmarks.md and bench/results.json (after every question, so a run that
    is stopped still leaves what it measured, marked incomplete)."""
    load_now = os.getloadavg()
    gpu = json.loads(GPU_RESULTS.read_text()) if GPU_RESULTS.exists() else None
    when = datetime.datetime.now().astimezone()
    load_avg = max(load_before[0], load_now[0])
    report = write_report(rows, data, gpu, when, load_avg, started, args.tiny)
    if not complete:
        report = report.replace(
            "## Summary\n",
            "## Summary\n\n> **Incomplete run**: it was stopped before every question was "
            "measured; the rows below are those it finished.\n",
        )
    out = args.out or ROOT
    (out / "docs").mkdir(parents=True, exist_ok=True)
    (out / "bench").mkdir(parents=True, exist_ok=True)
    (out / "docs" / "benchmarks.md").write_text(report)
    results = {
        "date": when.isoformat(timespec="minutes"),
        "machine": machine_line(),
        "load_average": load_avg,
        "tiny": args.tiny,
        "complete": complete,
        "rows": [row.as_dict() for row in rows] + (gpu or {}).get("rows", []),
        "gpu": {key: value for key, value in (gpu or {}).items() if key != "rows"} or None,
    }
    (out / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return report


def ray_hop_section() -> list[str]:
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
    print("== ray_hop", flush=True)
    try:
        import ray_hop

        return ray_hop.markdown(ray_hop.measure())
    except Exception as error:  # noqa: BLE001 - reported in the report, never hidden
        traceback.print_exc()
        return ["## The Ray Serve hop", "", f"The benchmark failed: {error!r}"[:300], ""]


def attempt(name: str, measure, data: dict[str, dict]) -> list[Row]:
    """One question's rows; a failure becomes a row saying so (the other questions still run)."""
    print(f"== {name}", flush=True)
    began = time.monotonic()
    try:
        rows, data[name] = measure()
        print(f"== {name}: {time.monotonic() - began:.1f} s", flush=True)
        return rows
    except Exception as error:  # noqa: BLE001 - reported in the results, never hidden
        traceback.print_exc()
        return [Row(name, f"{name}: the benchmark failed", "", None, note=f"{error!r}"[:300])]


def machine_line() -> str:
    from report import machine

    return " ".join(machine())


if __name__ == "__main__":
    sys.exit(main())
