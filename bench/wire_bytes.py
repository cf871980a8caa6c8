"""Question 1: bytes per preview frame reaching the browser, same pictures, same displayed size.

One client runs one generation against each app on loopback (``apps.py``): this project, the
plain ``gr.Image`` baseline (a) in each of its formats (the cheapest counts), ComfyUI-style JPEG
q95 frames (b), and AUTOMATIC1111-style polling of a PNG every 10 steps (c). Counted: every
byte received for the frames (event-stream messages, the image files the page fetches, the
polls), compressed as on the wire, headers included, divided by the frames shown.
Target: at most 1/10 of (a) and 1/25 of (b).
"""

from __future__ import annotations

import asyncio

from loopback import ClientRun, run_clients
from rows import Row, fraction_of

IMAGE_KINDS = ("image-webp", "image-jpeg", "image-png")
RATE, STEPS = 10.0, 30


def per_frame(run: ClientRun) -> float | None:
    return run.preview_bytes / len(run.frames) if run.frames else None


def picture_per_frame(run: ClientRun) -> float | None:
    return run.picture_bytes / len(run.frames) if run.frames else None


def measure(pool, tiny: bool = False) -> tuple[list[Row], dict]:
    steps = 6 if tiny else STEPS
    kinds = ("ours", "image-webp") if tiny else ("ours", *IMAGE_KINDS, "comfy", "a1111")
    figures: dict[str, float | None] = {}
    pictures: dict[str, float | None] = {}
    frames: dict[str, int] = {}
    for kind in kinds:
        print(f"bytes: {kind}", flush=True)
        try:
            server = pool.get(kind)
            run = asyncio.run(
                run_clients(server.url, [f"bytes-{kind}"], RATE, steps, kind == "a1111")
            )
            if run[0].error:
                raise RuntimeError(run[0].error)
            figures[kind], frames[kind] = per_frame(run[0]), len(run[0].frames)
            pictures[kind] = picture_per_frame(run[0])
        except Exception as error:  # noqa: BLE001 - one app failing leaves the others' figures
            print(f"bytes: {kind} failed: {error!r}", flush=True)
            figures[kind], pictures[kind], frames[kind] = None, None, 0
    image = {kind: figures[kind] for kind in IMAGE_KINDS if kind in figures}
    cheapest = min(image, key=lambda kind: image[kind] or float("inf"))
    ours = figures["ours"]
    a_share, a_words = fraction_of(ours, figures[cheapest])
    b_share, b_words = fraction_of(ours, figures.get("comfy"))
    c_share, c_words = fraction_of(ours, figures.get("a1111"))
    met = a_share is not None and a_share <= 1 / 10
    if "comfy" in figures:
        met = met and b_share is not None and b_share <= 1 / 25
    baselines = {f"(a) gr.Image {kind.split('-')[1]}": figures[kind] for kind in image}
    if "comfy" in figures:
        baselines["(b) ComfyUI-style JPEG q95"] = figures["comfy"]
        baselines["(c) A1111-style PNG poll"] = figures["a1111"]
    row = Row(
        "bytes",
        "Bytes per preview frame reaching the browser",
        "bytes",
        ours,
        baselines,
        f"{a_words} of (a) {cheapest.split('-')[1]}; {b_words} of (b); {c_words} of (c)",
        "<= 1/10 of (a), <= 1/25 of (b)",
        met,
        f"{steps} steps at {RATE:.0f} steps/s, one client; of ours, the picture (its data URL) "
        f"{pictures['ours'] or 0:,.0f} bytes, the event-stream message around it "
        f"{(ours or 0) - (pictures['ours'] or 0):,.0f}; frames shown: "
        + ", ".join(f"{kind} {count}" for kind, count in frames.items())
        + (
            f". (c) shows one frame per {10} steps: {figures['a1111'] / 10:.0f} bytes per step"
            if figures.get("a1111")
            else ""
        ),
    )
    return [row], {"cheapest_image": cheapest, "figures": figures, "pictures": pictures}
