"""Question 3: step to paint, from the step callback to Chromium having painted that frame.

For this project and baseline (a), at 10 steps/s (CPU-like) and 50 steps/s (GPU-like), with one
client and with 32 clients at once: one Chromium page runs a generation and records, from inside
the page, when each new preview was painted and which step it shows (the frames carry their step
in a marker block, see ``frames.py``); the other 31 clients run the same generation through the
queue protocol (``loopback.run_client``), where each frame's arrival is recorded. The step times
come from the app's own step log. No frontend change is needed: the page script watches the
preview ``<img>`` the way a user sees it (decoded, then the next animation frame painted).

Targets: p95 under 50 ms with one client at 10 steps/s; the newest frame on screen never older
than 100 ms at 32 clients; no client builds a backlog (its last frames arrive no later after
their steps than its first ones did, within 100 ms).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from frames import step_of_mark
from loopback import failures, lags_ms, run_clients
from rows import Row, percentile

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SELECTORS = {"ours": '#out [data-testid="preview-image"]', "image": "#out img"}
RATES = {10.0: 30, 50.0: 50}  # steps per second -> steps per run (markers cover 51 steps)
CLIENTS = (1, 32)
BACKLOG_MS = 100.0

# Runs in the page before Gradio: each time the preview <img> shows a new source, wait for it to
# be decoded, then for the next animation frame and the task after it (the frame is painted by
# then), record the time, and read the step marker from a separate copy of the picture.
WATCH_PAINTS_JS = """
(selector) => {
  window.__paints = [];
  let last = null;
  const mark = (src, painted) => {
    const probe = new Image();
    probe.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 1;
      const context = canvas.getContext('2d');
      const w = probe.naturalWidth, h = probe.naturalHeight;
      context.drawImage(probe, w * 4 / 64, h * 4 / 64, w * 8 / 64, h * 8 / 64, 0, 0, 1, 1);
      window.__paints.push([context.getImageData(0, 0, 1, 1).data[0], painted]);
    };
    probe.src = src;
  };
  const check = () => {
    const img = document.querySelector(selector);
    const src = img && img.getAttribute('src');
    if (!src || src === last) return;
    last = src;
    img.decode().then(() => requestAnimationFrame(() => setTimeout(() => {
      if (img.getAttribute('src') === src) mark(src, performance.timeOrigin + performance.now());
    }, 0))).catch(() => {});
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['src'],
  });
}
"""


def selector(kind: str) -> str:
    return SELECTORS["ours" if kind.startswith("ours") else "image"]


def painted(page, server, token: str, rate: float, steps: int, others: int) -> dict:
    """One run in ``page`` beside ``others`` protocol clients; the step-to-paint and arrival
    lags, in ms."""
    background: list = []
    tokens = [f"{token}-bg{i}" for i in range(others)]
    thread = threading.Thread(
        target=lambda: background.extend(asyncio.run(run_clients(server.url, tokens, rate, steps)))
    )
    page.evaluate("() => { window.__paints = []; }")
    page.get_by_label("Prompt", exact=True).fill(f"{token} {rate} {steps}")
    if others:
        thread.start()
    page.get_by_role("button", name="Generate", exact=True).click()
    deadline = time.monotonic() + steps / rate + 60
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        times = server.steps()
        if token in times and len(times[token]) >= steps and all(t in times for t in tokens):
            break
    page.wait_for_timeout(500)  # the last frame's paint
    if others:
        thread.join(120)
    times = server.steps()
    mine = times.get(token, {})
    paints = []
    for red, at in page.evaluate("() => window.__paints"):
        step = step_of_mark(red)
        if step in mine:
            paints.append(at / 1000 - mine[step])
    background_lags = lags_ms(background, times)
    result = {
        "paint_ms": [1000 * lag for lag in paints],
        "painted": len(paints),
        "arrival_ms": [lag for lags in background_lags for lag in lags],
        "backlog": [lags[-1] - lags[0] > BACKLOG_MS for lags in background_lags if lags],
        "failed": failures(background) if others and len(background) == others else "",
    }
    if others and len(background) != others:
        result["failed"] = f"; the {others} other clients did not finish"
    if len(mine) < steps:
        result["failed"] += f"; the page's own run logged {len(mine)} of {steps} steps in time"
    return result


def measure(pool, tiny: bool = False, image_kind: str = "image-webp") -> tuple[list[Row], dict]:
    from playwright.sync_api import sync_playwright

    kinds = ("ours",) if tiny else ("ours", "ours-async", image_kind)
    rates = {10.0: 6} if tiny else RATES
    client_counts = (1,) if tiny else CLIENTS
    results: dict[str, dict] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else None, args=CHROMIUM_ARGS
        )
        try:
            for kind in kinds:
                server = pool.get(kind)
                page = browser.new_page(viewport={"width": 1000, "height": 900})
                page.add_init_script(f"({WATCH_PAINTS_JS})({selector(kind)!r})")
                page.goto(server.url)
                page.get_by_role("button", name="Generate", exact=True).wait_for(timeout=120_000)
                for rate, steps in rates.items():
                    for clients in client_counts:
                        if kind == "ours-async" and clients == 1:
                            continue  # one client: the same path as ours
                        key = f"{kind} {rate:.0f}/s {clients}"
                        print(f"paint: {key} client(s)", flush=True)
                        token = f"paint-{kind}-{rate:.0f}-{clients}"
                        results[key] = painted(page, server, token, rate, steps, clients - 1)
                page.close()
        finally:
            browser.close()
    return rows(results, kinds, rates, client_counts), {"scenarios": summary(results)}


def summary(results: dict[str, dict]) -> dict[str, dict]:
    return {
        key: {
            "p50_ms": percentile(result["paint_ms"], 0.5),
            "p95_ms": percentile(result["paint_ms"], 0.95),
            "max_ms": max(result["paint_ms"], default=None),
            "painted": result["painted"],
            "arrival_p95_ms": percentile(result["arrival_ms"], 0.95),
            "arrival_max_ms": max(result["arrival_ms"], default=None),
            "clients_with_backlog": sum(result["backlog"]),
            "failed": result["failed"],
        }
        for key, result in results.items()
    }


def rows(results, kinds, rates, client_counts) -> list[Row]:
    table = summary(results)
    out = []
    for rate in rates:
        for clients in client_counts:
            ours = table[f"ours {rate:.0f}/s {clients}"]
            theirs = table.get(f"{kinds[-1]} {rate:.0f}/s {clients}") if len(kinds) > 1 else None
            baselines = {}
            if theirs:
                baselines = {
                    "(a) p50": theirs["p50_ms"],
                    "(a) p95": theirs["p95_ms"],
                    "(a) max": theirs["max_ms"],
                }
            target, met = "", None
            if clients == 1 and rate == 10:
                target = "p95 < 50 ms"
                met = ours["p95_ms"] is not None and ours["p95_ms"] < 50
            elif clients > 1:
                target = "newest frame never older than 100 ms; no backlog"
                worst = max(
                    (v for v in (ours["max_ms"], ours["arrival_max_ms"]) if v is not None),
                    default=None,
                )
                met = worst is not None and worst < 100 and ours["clients_with_backlog"] == 0
            note = (
                f"ours painted {ours['painted']} frames"
                + (f", (a) {theirs['painted']}" if theirs else "")
                + (
                    f"; other clients' arrival p95 {fmt(ours['arrival_p95_ms'])} ms, "
                    f"max {fmt(ours['arrival_max_ms'])} ms, backlogged "
                    f"{ours['clients_with_backlog']}"
                    + (
                        f" (a: p95 {fmt(theirs['arrival_p95_ms'])}, max "
                        f"{fmt(theirs['arrival_max_ms'])}, backlogged "
                        f"{theirs['clients_with_backlog']})"
                        if theirs
                        else ""
                    )
                    if clients > 1
                    else ""
                )
                + ours["failed"]
                + (f" (a){theirs['failed']}" if theirs and theirs["failed"] else "")
            )
            out.append(
                Row(
                    "paint",
                    f"Step to paint in Chromium, {rate:.0f} steps/s, {clients} client(s): "
                    f"p50 / p95 / max",
                    "ms",
                    ours["p95_ms"],
                    baselines,
                    f"p50 {fmt(ours['p50_ms'])}, p95 {fmt(ours['p95_ms'])}, "
                    f"max {fmt(ours['max_ms'])}"
                    + (f" vs (a) p95 {fmt(theirs['p95_ms'])}" if theirs else ""),
                    target,
                    met,
                    note,
                )
            )
            if f"ours-async {rate:.0f}/s {clients}" in table:
                out.append(async_row(table, rate, clients, ours, theirs))
    return out


def async_row(table, rate: float, clients: int, ours: dict, theirs: dict | None) -> Row:
    """The same scenario with an ``async def`` handler streaming through ``astream()``."""
    mine = table[f"ours-async {rate:.0f}/s {clients}"]
    worst = max(
        (v for v in (mine["max_ms"], mine["arrival_max_ms"]) if v is not None), default=None
    )
    baselines = {"`stream()` p95": ours["p95_ms"]}
    if theirs:
        baselines["(a) p95"] = theirs["p95_ms"]
    return Row(
        "paint",
        f"Step to paint in Chromium, {rate:.0f} steps/s, {clients} clients, `async def` handler "
        "with `astream()`: p50 / p95 / max",
        "ms",
        mine["p95_ms"],
        baselines,
        f"p50 {fmt(mine['p50_ms'])}, p95 {fmt(mine['p95_ms'])}, max {fmt(mine['max_ms'])} vs "
        f"`stream()` p95 {fmt(ours['p95_ms'])}",
        "newest frame never older than 100 ms; no backlog",
        worst is not None and worst < 100 and mine["clients_with_backlog"] == 0,
        f"painted {mine['painted']} frames; other clients' arrival p95 "
        f"{fmt(mine['arrival_p95_ms'])} ms, max {fmt(mine['arrival_max_ms'])} ms, backlogged "
        f"{mine['clients_with_backlog']}" + mine["failed"],
    )


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"
