"""CPU threads (issue #33): a run of the bundled model while another process keeps every core
busy, beside the same run quiet, with the diffusers backend's thread choice and with torch's
default threads; and click to first preview painted in Chromium, beside one step.

    .venv/bin/python bench/cpu_threads.py           # these rows alone (about a minute), printed
    .venv/bin/python bench/cpu_threads.py --tiny    # one round, few steps

Contention: two worker processes (``--worker``) each load the bundled shapes model on a
``DiffusersBackend`` and run it through ``stream()`` (20 steps, 64 px, as the demo does), one
with the backend's own choice (``torch_threads="auto"``), one with torch's defaults
(``torch_threads="keep"``, ``OMP_NUM_THREADS`` unset); torch's threads are per process, hence a
process each. Each round runs both quiet, then both again while a hog process keeps every
usable core busy (one busy loop per core, started for those runs and killed after), the order
alternating between rounds; the rows compare medians. Target: under contention, at most 2x the
quiet time (a run's fair share of two busy cores is about 1.5x).

First paint: the ``bundled`` app of ``apps.py`` (the same model and backend, served on loopback)
in Chromium; a page script records the click on Generate and when each new preview was painted
(``paint.py``'s watcher); the step times come from the backend's step listener. Target: the
first preview painted within one step plus 50 ms of the click.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import Row, median  # noqa: E402

HERE = Path(__file__).resolve()
STEPS, ROUNDS = 20, 5
TINY_STEPS, TINY_ROUNDS = 2, 1
CLICKS, TINY_CLICKS = 8, 2  # after the fresh page's first click
SETTINGS = {"ours": "auto", "torch": "keep"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "DIFFUSION_PREVIEW_TORCH_THREADS")
PROMPT = "a red circle on a blue background"
HOG_SECONDS = 300  # a hog outliving a stopped benchmark ends by itself, on a shared machine
HOG = """
import os, time
os.nice(int(os.environ["HOG_NICE"]))
parent = int(os.environ["HOG_PARENT"])
deadline = time.monotonic() + float(os.environ["HOG_SECONDS"])
for _ in range(int(os.environ["HOG_CORES"]) - 1):
    if os.fork() == 0:
        break
spins = 0
while True:
    spins += 1
    if spins % 1_000_000 == 0:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            break
"""
CLICK_JS = """
() => {
  window.__clicked = null;
  document.addEventListener('click', (event) => {
    const button = event.target.closest && event.target.closest('button');
    if (button && button.textContent.trim() === 'Generate') {
      window.__clicked = performance.timeOrigin + performance.now();
    }
  }, true);
}
"""


# -- the worker: one process, one thread setting -------------------------------------------------


def worker(setting: str, steps: int) -> None:
    """Loads the bundled model, then answers each ``run`` line on stdin with one run's seconds
    and the threads torch used on the run's thread, as a JSON line."""
    import torch

    from gradio_diffusion_preview import stream
    from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
    from gradio_diffusion_preview.bundled.shapes import model_dir

    backend = DiffusersBackend(torch_threads=setting)
    used: set[int] = set()
    backend.step_listeners.append(lambda step, total: used.add(torch.get_num_threads()))
    fields = dict(prompt=PROMPT, model=str(model_dir()), steps=steps, seed=1, width=64, height=64)

    def run() -> float:
        used.clear()
        started = time.perf_counter()
        states = list(stream(backend, **fields))
        seconds = time.perf_counter() - started
        if states[-1].status != "done":
            raise SystemExit(f"the bundled model did not run: {states[-1].message}")
        return seconds

    run()  # loads the pipeline and applies the thread choice
    print(json.dumps({"ready": True, "threads": sorted(used)}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        seconds = run()
        print(json.dumps({"seconds": seconds, "threads": sorted(used)}), flush=True)


class Worker:
    """A ``worker`` process; ``run()`` is one timed run in it.

    ``tiny``: its OpenMP threads sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``) instead of
    spinning. The tiny mode's figures are not measurements, and in the test suite, beside the
    other tests, torch's default threads spun on both cores: the tiny driver took 181 s instead
    of about 60, and slowed the Chromium tests beside it threefold."""

    def __init__(self, setting: str, steps: int, tiny: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        if tiny:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by close()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE), "--worker", setting, "--steps", str(steps)],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.threads: list[int] = []

    def answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the worker exited: {self.log.read()[-2000:]}")
        return json.loads(line)

    def ready(self) -> Worker:
        self.threads = self.answer()["threads"]
        return self

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        answer = self.answer()
        self.threads = answer["threads"]
        return answer["seconds"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Hog:
    """A process keeping every usable core busy (one busy loop each) while the block runs.

    ``nice``: the loops' niceness. The tiny mode (the test suite's run of every piece) gives
    them 19, the lowest priority: the same processes start, spin and end, but they take the
    cores only from idle time, not from the tests running beside them (at full priority the
    whole tiny-mode test took about 180 s in the suite against 40 s alone). Its figures are
    not measurements either way.

    The loops have a process group of their own, which ``__exit__`` kills. A niced hog stays
    in this process's session: where the kernel groups processes by session for scheduling
    (``/proc/sys/kernel/sched_autogroup_enabled``, on here and on most desktop and CI
    kernels), niceness counts only within a session, and niced loops in a session of their
    own took as much CPU as the whole test run beside them (a busy loop's work took 0.65 s
    beside them, 0.30 s beside the same loops in its own session)."""

    def __init__(self, nice: int = 0) -> None:
        self.nice = nice

    def __enter__(self) -> Hog:
        from gradio_diffusion_preview.backends.diffusers.cpu_threads import usable_cores

        self.cores = usable_cores()
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOG],
            env={
                **os.environ,
                "HOG_CORES": str(self.cores),
                "HOG_PARENT": str(os.getpid()),
                "HOG_SECONDS": str(HOG_SECONDS),
                "HOG_NICE": str(self.nice),
            },
            **({"process_group": 0} if self.nice else {"start_new_session": True}),
        )
        time.sleep(0.5)  # every loop running
        return self

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        time.sleep(0.3)  # the cores quiet again


PAINT_GRACE = 20.0
"""Seconds after a click's run has ended that its first paint is awaited (then it counts as a
failed click, named in the results)."""
_BEGAN = time.monotonic()


def say(what: str) -> None:
    """A progress line, with the seconds since this script's start (where the time goes)."""
    print(f"cpu_threads: {what} (at {time.monotonic() - _BEGAN:.1f} s)", flush=True)


def contention(tiny: bool) -> dict:
    steps, rounds = (TINY_STEPS, TINY_ROUNDS) if tiny else (STEPS, ROUNDS)
    from gradio_diffusion_preview.backends.diffusers.cpu_threads import usable_cores

    load_before = os.getloadavg()[0]
    workers = {name: Worker(setting, steps, tiny) for name, setting in SETTINGS.items()}
    times: dict[str, list[float]] = {
        f"{name} {when}": [] for name in workers for when in ("quiet", "busy")
    }
    try:
        for found in workers.values():
            found.ready()
        say("workers ready")
        for round_ in range(rounds):
            order = list(workers) if round_ % 2 == 0 else list(reversed(workers))
            say(f"round {round_ + 1} of {rounds}, quiet")
            for name in order:
                times[f"{name} quiet"].append(workers[name].run())
            say(f"round {round_ + 1} of {rounds}, every core busy")
            with Hog(nice=19 if tiny else 0):
                for name in order:
                    times[f"{name} busy"].append(workers[name].run())
        threads = {name: found.threads for name, found in workers.items()}
    finally:
        for found in workers.values():
            found.close()
    return {
        "steps": steps,
        "rounds": rounds,
        "hog_cores": usable_cores(),
        "threads": threads,
        "seconds": times,
        "medians": {key: median(values) for key, values in times.items()},
        "load_average": max(load_before, os.getloadavg()[0]),  # the hog's own included
    }


# -- click to first preview painted -------------------------------------------------------------


def first_paint(tiny: bool) -> dict:
    from loopback import AppServer
    from paint import CHROMIUM, CHROMIUM_ARGS, WATCH_PAINTS_JS, selector
    from playwright.sync_api import sync_playwright

    steps, clicks = (TINY_STEPS, TINY_CLICKS) if tiny else (STEPS, CLICKS)
    latencies, to_handler, to_step_one, step_ms, failed = [], [], [], [], []
    with AppServer("bundled") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else None, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.add_init_script(f"({WATCH_PAINTS_JS})({selector('ours')!r})")
            page.add_init_script(f"({CLICK_JS})()")
            page.goto(server.url)
            page.get_by_role("button", name="Generate", exact=True).wait_for(timeout=120_000)
            say("page ready")
            for click in range(clicks + 1):
                say(f"click {click + 1} of {clicks + 1}")
                token = f"first-paint-{click}"
                page.evaluate("() => { window.__paints = []; window.__clicked = null; }")
                page.get_by_label("Prompt", exact=True).fill(f"{token} 0 {steps}")
                page.get_by_role("button", name="Generate", exact=True).click()
                deadline = time.monotonic() + 120
                while token not in server.steps() and time.monotonic() < deadline:
                    page.wait_for_timeout(100)
                # and a paint: on a busy machine the page may paint only after the run's end,
                # and it has had the run's last state by a while after it
                deadline = min(deadline, time.monotonic() + PAINT_GRACE)
                while not page.evaluate("() => window.__paints.length") and (
                    time.monotonic() < deadline
                ):
                    page.wait_for_timeout(100)
                page.wait_for_timeout(300)  # the last paints recorded
                say(f"click {click + 1} painted")
                stamps = server.steps().get(token, {})
                clicked = page.evaluate("() => window.__clicked")
                paints = [at for _, at in page.evaluate("() => window.__paints")]
                if not (0 in stamps and 1 in stamps and clicked and paints):
                    failed.append(f"click {click + 1}: steps {len(stamps)}, paints {len(paints)}")
                    continue
                latencies.append(min(paints) - clicked)
                to_handler.append(1000 * stamps[0] - clicked)
                to_step_one.append(1000 * stamps[1] - clicked)
                ordered = [stamps[step] for step in sorted(stamps) if step > 0]
                step_ms += [1000 * (b - a) for a, b in zip(ordered, ordered[1:], strict=False)]
        finally:
            browser.close()
    return {
        "steps": steps,
        "first_paint_ms": latencies,  # the first entry: the fresh page's first click
        "click_to_handler_ms": to_handler,  # Gradio's part: the page's request, the queue
        "click_to_step_one_ms": to_step_one,
        "step_ms": median(step_ms),
        "failed": "; ".join(failed),
    }


# -- rows, the report's section, standalone ------------------------------------------------------


def measure(pool=None, tiny: bool = False) -> tuple[list[Row], dict]:
    """The rows (``pool`` is unused: this question starts its own processes, with no other
    app running)."""
    data = {"contention": contention(tiny)}
    try:
        data["paint"] = first_paint(tiny)
    except Exception as error:  # noqa: BLE001 - the contention rows still count; named below
        data["paint"] = {"error": f"{error!r}"[:300]}
    return rows(data), data


def rows(data: dict) -> list[Row]:
    out = []
    found = data["contention"]
    medians, threads, steps = found["medians"], found["threads"], found["steps"]
    ours_quiet, ours_busy = medians["ours quiet"], medians["ours busy"]
    torch_quiet, torch_busy = medians["torch quiet"], medians["torch busy"]
    ratio = ours_busy / ours_quiet
    torch_ratio = torch_busy / torch_quiet
    hog = f"{found['hog_cores']} busy loops"
    out.append(
        Row(
            "cpu_threads",
            f"A run of the bundled model ({steps} steps, `stream()`) while another process "
            f"keeps every core busy ({hog}), the backend's thread choice "
            f"({_threads(threads['ours'])}): median",
            "s",
            ours_busy,
            {"the same run, quiet": ours_quiet},
            f"{ratio:.2f}x quiet",
            "<= 2x quiet",
            ratio <= 2.0,
            f"{found['rounds']} round{'s' if found['rounds'] != 1 else ''}, quiet and busy "
            "alternating; busy runs "
            f"{_list(found['seconds']['ours busy'])} s; load average "
            f"{found.get('load_average', float('nan')):.1f} on {os.cpu_count()} cores",
        )
    )
    out.append(
        Row(
            "cpu_threads",
            f"The same with torch's default threads ({_threads(threads['torch'])}): median",
            "s",
            torch_busy,
            {"the same run, quiet": torch_quiet, "the backend's choice, busy": ours_busy},
            f"{torch_ratio:.1f}x quiet; {torch_busy / ours_busy:.1f}x the backend's choice",
            "",
            None,
            f"busy runs {_list(found['seconds']['torch busy'])} s; quiet, the backend's choice "
            f"took {ours_quiet:.2f} s and torch's defaults {torch_quiet:.2f} s",
        )
    )
    paint = data.get("paint", {})
    if "error" in paint or not paint.get("first_paint_ms"):
        reason = paint.get("error") or paint.get("failed") or "no click was measured"
        out.append(
            Row(
                "cpu_threads",
                "Click to first preview painted: the benchmark failed",
                "ms",
                None,
                note=reason,
            )
        )
        return out
    step = paint["step_ms"] or 0.0
    latencies, server = paint["first_paint_ms"], paint["click_to_step_one_ms"]
    handler = paint.get("click_to_handler_ms") or [None] * len(latencies)
    for label, value, on_server, at_handler, count in (
        ("a fresh page's first click", latencies[0], server[0], handler[0], 1),
        (
            f"later clicks, median of {len(latencies) - 1}",
            median(latencies[1:]),
            median(server[1:]),
            median([v for v in handler[1:] if v is not None]),
            len(latencies) - 1,
        ),
    ):
        if value is None:
            continue
        out.append(
            Row(
                "cpu_threads",
                f"Click to first preview painted in Chromium, bundled model, {label}",
                "ms",
                value,
                {"one step": step},
                f"one step + {value - step:.0f} ms",
                "<= one step + 50 ms",
                value <= step + 50,
                (
                    f"click to the handler starting {at_handler:.0f} ms (the page's request, "
                    "Gradio's queue), "
                    if at_handler is not None
                    else ""
                )
                + f"click to step 1 done on the server {on_server:.0f} ms (then the run's "
                f"setup and the step), step 1 to painted {value - on_server:.0f} ms"
                + (f"; {paint['failed']}" if paint["failed"] and count > 1 else ""),
            )
        )
    return out


def _threads(found: list[int]) -> str:
    return ", ".join(f"{n} thread{'s' if n != 1 else ''}" for n in found) or "? threads"


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def section(data: dict) -> str:
    """The report's section: the setting, its rule, these figures, and when to change it."""
    found = data.get("contention")
    figures = ""
    if found:
        medians, threads = found["medians"], found["threads"]
        ours_ratio = medians["ours busy"] / medians["ours quiet"]
        figures = (
            f" In this run (the bundled model, {found['steps']} steps through `stream()`, "
            f"{found['hog_cores']} busy loops for contention): with the backend's choice "
            f"({_threads(threads['ours'])}) {medians['ours quiet']:.2f} s quiet and "
            f"{medians['ours busy']:.2f} s busy ({ours_ratio:.1f}x); "
            f"with torch's defaults ({_threads(threads['torch'])}) {medians['torch quiet']:.2f} s "
            f"quiet and {medians['torch busy']:.2f} s busy "
            f"({medians['torch busy'] / medians['torch quiet']:.1f}x)."
        )
    return "\n".join(
        [
            "## CPU threads",
            "",
            "On the CPU the diffusers backend sets torch's intra-op threads itself instead of "
            "keeping torch's default of one per core (`backends/diffusers/cpu_threads.py`). "
            "Each torch operation is split among the threads and waits for the slowest, so "
            "with a thread on every core a run stalls on every operation as soon as anything "
            "else wants a core: another process, Gradio's own work beside the generation, a "
            "second run. The backend leaves one core for that other work and shares the rest "
            "among the runs the app allows at once: `max(1, (usable cores - 1) // "
            "concurrent_runs)`, where usable cores are the process's CPU affinity capped by a "
            "container's CPU quota (which torch's default ignores). On 2 cores that is one "
            "thread." + figures,
            "",
            'Set it with `DiffusersBackend(torch_threads=N)` (or `"keep"` to leave torch\'s '
            "setting to your app), or the environment variable "
            "`DIFFUSION_PREVIEW_TORCH_THREADS`; `OMP_NUM_THREADS`, when set, is kept. The "
            "first CPU run applies it, once for the process, and logs it (logger "
            "`gradio_diffusion_preview.backends.diffusers.cpu_threads`, level INFO). When to "
            "change it:",
            "",
            "- A GPU machine: nothing is applied for runs on a GPU, whose work is on the "
            "device; if the same process runs CPU models too, set torch's threads yourself.",
            "- A CPU Space or container: the automatic choice reads the CPU quota (2 vCPU: one "
            "thread). On a dedicated machine with a large model and nothing else running, "
            "threads on every core can be faster: measure with `DIFFUSION_PREVIEW_TORCH_"
            "THREADS`.",
            "- Several runs at once in one app: `concurrent_runs=N` (the `Policy`'s slots for "
            "the backend) shares the cores among them.",
            "- Several replicas on one host: each process would take the whole machine; give "
            "each `cores / replicas` with the variable (Ray Serve sets `OMP_NUM_THREADS` to "
            "each replica's `--num-cpus`, which the backend keeps).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--worker", choices=sorted(SETTINGS.values()), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps)
        return 0
    from report import summary

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    found, data = measure(None, args.tiny)
    print("\n".join(summary(found)))
    print()
    print(section(data))
    print(
        f"{time.monotonic() - started:.0f} s; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after ({os.cpu_count()} cores)"
    )
    print(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
