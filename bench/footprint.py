"""Question 5: footprint over 1,000 preview frames: files the server writes and how much its
memory grows, this project against baseline (a).

After a warm-up round at the same concurrency, 4 clients each run 5 generations of 50 steps at
16 steps/s (every step is a frame: below this project's one frame per 0.05 s), 1,000 frames in
all. Counted: files added to the app's Gradio cache folder (each run's final image is one file
for this project; the previews should add none) and the server process's resident memory
before and after.
Targets: no files for previews; memory growth under 5 MB.
"""

from __future__ import annotations

import asyncio

from loopback import failures, run_clients
from rows import Row

CLIENTS, RUNS, STEPS, RATE = 4, 5, 50, 16.0


def scenario(server, clients: int, runs: int, steps: int) -> dict:
    # Warm up at the same concurrency, so thread stacks and allocator arenas are already there.
    asyncio.run(run_clients(server.url, [f"warm-up-{i}" for i in range(clients)], RATE, steps))
    files, rss = server.cache_files(), server.rss_mb()
    frames, failed = 0, []
    for run in range(runs):
        tokens = [f"footprint-{run}-{i}" for i in range(clients)]
        results = asyncio.run(run_clients(server.url, tokens, RATE, steps))
        frames += sum(len(result.frames) for result in results)
        failed += [result for result in results if result.error]
    return {
        "frames": frames,
        "steps": clients * runs * steps,
        "runs": clients * runs,
        "files": server.cache_files() - files,
        "memory_mb": server.rss_mb() - rss,
        "failed": failures(failed),
    }


def measure(pool, tiny: bool = False, image_kind: str = "image-webp") -> tuple[list[Row], dict]:
    clients, runs, steps = (1, 1, 8) if tiny else (CLIENTS, RUNS, STEPS)
    kinds = ("ours",) if tiny else ("ours", image_kind)
    results = {}
    for kind in kinds:
        print(f"footprint: {kind}", flush=True)
        results[kind] = scenario(pool.get(kind), clients, runs, steps)
    ours, theirs = results["ours"], results.get(image_kind)
    label = f"(a) gr.Image {image_kind.split('-')[1]}"
    preview_files = ours["files"] - ours["runs"]  # one final image per run is not a preview
    frames = f"{ours['steps']} steps ({ours['frames']} frames delivered)"
    return [
        Row(
            "footprint",
            f"Files written for previews over {frames}",
            "files",
            max(preview_files, 0),
            {label: theirs["files"]} if theirs else {},
            f"{ours['files']} files in all for {ours['runs']} runs (their final images)",
            "none",
            preview_files <= 0,
        ),
        Row(
            "footprint",
            f"Server memory growth over {frames}",
            "MB",
            ours["memory_mb"],
            {label: theirs["memory_mb"]} if theirs else {},
            "",
            "< 5 MB",
            ours["memory_mb"] < 5,
            "resident memory of the server process after a warm-up round and after the measured"
            " rounds; it includes Gradio's per-session records (about 20 KB for each of the"
            f" {ours['runs']} runs, each a new session here)" + ours["failed"],
        ),
    ], results
