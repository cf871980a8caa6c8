"""Question 4: throughput under load: 32 clients at once, each running a generation at 50 steps
per second (GPU-like) through the queue protocol, against this project and baseline (a).

Figures: frames delivered per second in total and per client (a frame counts once it has
arrived, with its file where there is one), and the server's CPU time per frame and per step
(from ``/proc``; the server process only). This project sends at most one frame per
``min_interval`` (0.05 s) per client by design (latest wins), so at 50 steps/s it delivers fewer
frames than steps, each the newest; the baseline tries to send every step.
"""

from __future__ import annotations

import asyncio
import time

from loopback import failures, lags_ms, run_clients
from rows import Row, percentile

CLIENTS, RATE, STEPS = 32, 50.0, 50


def scenario(server, clients: int, rate: float, steps: int) -> dict:
    tokens = [f"load-{server.kind}-{i}-{time.monotonic_ns()}" for i in range(clients)]
    cpu = server.cpu_seconds()
    started = time.monotonic()
    runs = asyncio.run(run_clients(server.url, tokens, rate, steps))
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu
    frames = sum(len(run.frames) for run in runs)
    lags = [lag for lags in lags_ms(runs, server.steps()) for lag in lags]
    return {
        "frames": frames,
        "wall_s": wall,
        "fps_total": frames / wall,
        "fps_per_client": frames / wall / clients,
        "cpu_ms_per_frame": 1000 * cpu / frames if frames else None,
        "cpu_ms_per_step": 1000 * cpu / (clients * steps),
        "arrival_p95_ms": percentile(lags, 0.95),
        "failed": failures(runs),
    }


def measure(pool, tiny: bool = False, image_kind: str = "image-webp") -> tuple[list[Row], dict]:
    clients, steps = (4, 10) if tiny else (CLIENTS, STEPS)
    kinds = ("ours",) if tiny else ("ours", "ours-async", image_kind)
    results = {}
    for kind in kinds:
        print(f"load: {kind}, {clients} clients", flush=True)
        results[kind] = scenario(pool.get(kind), clients, RATE, steps)
    ours, theirs = results["ours"], results.get(image_kind)
    label = f"(a) gr.Image {image_kind.split('-')[1]}"

    def row(figure: str, key: str, unit: str, better: str) -> Row:
        value, other = ours[key], theirs[key] if theirs else None
        ratio = ""
        if value and other:
            ratio = (
                f"{value / other:.2f}x (a)" if better == "more" else f"1/{other / value:.1f} of (a)"
            )
        return Row("load", figure, unit, value, {label: other} if theirs else {}, ratio)

    per_client = f"{clients} clients, {RATE:.0f} steps/s, {steps} steps each"
    out = [
        row(f"Frames delivered per second, total ({per_client})", "fps_total", "frames/s", "more"),
        row("Frames delivered per second, per client", "fps_per_client", "frames/s", "more"),
        row("Server CPU per frame delivered", "cpu_ms_per_frame", "ms", "less"),
        row("Server CPU per step streamed", "cpu_ms_per_step", "ms", "less"),
    ]
    out[0].note = (
        f"ours sends at most 20 frames/s per client (latest wins); arrival p95 ours "
        f"{ours['arrival_p95_ms'] or 0:.0f} ms"
        + (f", (a) {theirs['arrival_p95_ms'] or 0:.0f} ms" if theirs else "")
        + ours["failed"]
        + (f" (a){theirs['failed']}" if theirs and theirs["failed"] else "")
    )
    if "ours-async" in results:
        mine = results["ours-async"]
        cpu, sync_cpu = mine["cpu_ms_per_frame"], ours["cpu_ms_per_frame"]
        out.append(
            Row(
                "load",
                "Server CPU per frame delivered, `async def` handler with `astream()`",
                "ms",
                cpu,
                {"`stream()` in a plain handler": sync_cpu, label: theirs["cpu_ms_per_frame"]}
                if theirs
                else {"`stream()` in a plain handler": sync_cpu},
                f"{100 * (cpu / sync_cpu - 1):+.0f}% vs `stream()`" if cpu and sync_cpu else "",
                note=f"{mine['fps_total']:.0f} frames/s delivered in total; arrival p95 "
                f"{mine['arrival_p95_ms'] or 0:.0f} ms" + mine["failed"],
            )
        )
    return out, results
