"""Soak a public app: many runs from concurrent clients with random cancels and disconnects.

    .venv/bin/python bench/soak.py --runs 1000      # `make soak`; about 10 minutes on 2 cores
    .venv/bin/python bench/soak.py --runs 64        # what the test suite runs

The app is a DiffusionPreview streaming a toy backend (flat images, a short sleep per step) under
a ``Policy`` (two runs at once, a line of 8, one run per session), served by Gradio on loopback in
this process. Each of ``--clients`` threads is one visitor (its own session) that, run after run,
either waits for the result (gradio_client), cancels mid-run (``job.cancel()``), or disconnects
mid-run (closes its event stream over raw HTTP, as a closed tab does). At the end it checks that
no run was lost (every awaited run ended done or was answered busy), none is stuck (the queue is
empty, no run is registered, no generation thread is left), no value but a finished run's wrote
a file (previews travel as data URLs), and
memory stayed within ``--memory-bound`` MB of its level after warm-up; it prints the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import sys
import threading
import time
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import psutil  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from gradio_diffusion_preview import (  # noqa: E402
    Backend,
    Capabilities,
    DiffusionPreview,
    Finished,
    Registry,
    Started,
    Step,
    hookimpl,
    stream,
)
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy  # noqa: E402
from gradio_diffusion_preview.run_handles import RUNS  # noqa: E402

STEP_SECONDS = 0.01


class SoakBackend(Backend):
    """Flat images whose colour depends on the seed; a short sleep per step, cancel-aware."""

    id = "soak"
    display_name = "Soak (toy)"
    location = "local"
    capabilities = Capabilities(any_model=True, default_size=(64, 64), default_steps=10)

    def __init__(self) -> None:
        self.finished = 0

    def generate(self, request, control):
        yield Started(request.steps, "toy", [request.seed], request.width, request.height)
        for step in range(1, request.steps + 1):
            if control.wait_cancelled(STEP_SECONDS):
                return
            yield Step(step, request.steps, np.full((8, 8, 3), step * 20 % 256, np.uint8))
        self.finished += 1
        colour = (request.seed % 256, 90, 200)
        yield Finished([PIL.Image.new("RGB", (64, 64), colour)], [request.seed])


def soak_registry() -> Registry:
    class SoakPlugin:
        @hookimpl
        def register_backends(self, register):
            register(SoakBackend())

    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_plugin(SoakPlugin(), "soak")
    return registry


def soak_policy() -> Policy:
    return Policy(
        catalogue=[CatalogueEntry(id="toy", backend="soak", model="toy")],
        limits=Limits(time_limit=60),
        slots={"soak": 2},
        max_queue=8,
        image_max_age=30,
        runs_per_client=32,  # 16 clients standing for 16 people, all on loopback
    )


def build_app(policy: Policy, registry: Registry) -> gr.Blocks:
    def generate(prompt, steps, seed):
        yield from stream(
            "soak",
            prompt=prompt,
            model="toy",
            steps=steps,
            seed=seed,
            policy=policy,
            registry=registry,
        )

    with gr.Blocks() as app:
        prompt, steps, seed = gr.Textbox(), gr.Number(), gr.Number()
        preview = DiffusionPreview(keep_images_for=policy.image_max_age)
        preview.files_written = Counter()  # by the status of the value that wrote them
        postprocess = preview.postprocess

        def counted(value):
            data = postprocess(value)
            if data is not None and data.images:
                preview.files_written[data.status] += len(data.images)
            return data

        preview.postprocess = counted
        app.soak_preview = preview
        run = gr.Button().click(
            generate,
            [prompt, steps, seed],
            preview,
            api_name="generate",
            preprocess=False,
            concurrency_limit=32,
        )
        preview.attach_run(run)
    return app


def disconnect_mid_run(url: str, fn_index: int, steps: int, seed: int) -> str:
    """Join the queue as a fresh session, read until the first value, and hang up; returns
    "disconnected", or "completed" when the run had already ended (e.g. answered busy)."""
    session = f"soak-{random.getrandbits(48):x}"
    with httpx.Client(base_url=url, timeout=60) as http:
        joined = http.post(
            "/gradio_api/queue/join",
            json={"data": ["a", steps, seed], "fn_index": fn_index, "session_hash": session},
        )
        joined.raise_for_status()
        with http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": session}
        ) as response:
            for line in response.iter_lines():
                message = json.loads(line[5:])["msg"] if line.startswith("data:") else None
                if message == "process_generating":
                    return "disconnected"
                if message == "process_completed":
                    return "completed"
    return "completed"


def one_visitor(url: str, fn_index: int, runs: list, outcomes: Counter, lock, rng) -> None:
    client = Client(url, verbose=False, download_files=False)
    while True:
        with lock:
            if not runs:
                return
            runs.pop()
        action = rng.choices(["wait", "cancel", "disconnect"], [6, 2, 2])[0]
        steps, seed = rng.randint(2, 30), rng.randrange(2**16)
        try:
            if action == "disconnect":
                outcome = disconnect_mid_run(url, fn_index, steps, seed)
            elif action == "cancel":
                job = client.submit("a", steps, seed, api_name="/generate")
                deadline = time.monotonic() + 60
                while not job.outputs() and not job.done() and time.monotonic() < deadline:
                    time.sleep(0.01)
                job.cancel()
                outcome = "cancelled"
            else:
                job = client.submit("a", steps, seed, api_name="/generate")
                try:
                    outcome = job.result(timeout=120)["status"]
                except AppError:  # a failed run: its error state is the job's last output
                    outcome = job.outputs()[-1]["reason"]
        except Exception as error:  # a lost run: counted, and the soak fails
            outcome = f"lost: {type(error).__name__}: {error}"[:120]
        with lock:
            outcomes[outcome] += 1


def gdp_threads(besides: frozenset[threading.Thread] = frozenset()) -> int:
    """The package's run threads alive in this process, not counting those in ``besides``."""
    return len(gdp_thread_set() - besides)


def gdp_thread_set() -> frozenset[threading.Thread]:
    return frozenset(t for t in threading.enumerate() if t.name.startswith("gdp-"))


def runs_added(before: frozenset[str]) -> int:
    """Runs registered now that were not in ``before``: an earlier test's leftover run that ends
    during the soak must not count (a plain count went negative then and read as stuck)."""
    return len(RUNS.ids() - before)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def soak(runs: int = 64, clients: int = 16, seed: int = 0, memory_bound: float = 30.0) -> dict:
    """Run the soak; returns its figures and ``problems`` (empty when it passed)."""
    rng = random.Random(seed)
    # What this process already had (a test suite's earlier tests): the soak judges its own runs.
    threads_before, runs_before = gdp_thread_set(), RUNS.ids()
    policy, registry = soak_policy(), soak_registry()
    app = build_app(policy, registry)
    app.queue(max_size=64)
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    process = psutil.Process()
    try:
        config = httpx.get(f"{url.rstrip('/')}/config").json()
        fn_index = next(
            dep.get("id", i)
            for i, dep in enumerate(config["dependencies"])
            if dep.get("api_name") == "generate"
        )
        warm = Counter()
        one_visitor(url, fn_index, [None] * 4, warm, threading.Lock(), rng)  # imports, caches
        gc.collect()
        baseline = process.memory_info().rss
        app.soak_preview.files_written.clear()
        outcomes: Counter = Counter()
        lock = threading.Lock()
        pending = [None] * runs
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=one_visitor,
                args=(url, fn_index, pending, outcomes, lock, random.Random(rng.random())),
            )
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        # Memory is measured from the point where every visitor has connected and a quarter of
        # the runs are done (clients, sessions and caches exist), to the end: flat means no leak.
        warm_at, warmed, peak = max(clients, runs // 4), None, baseline
        while any(thread.is_alive() for thread in threads):
            rss = process.memory_info().rss
            peak = max(peak, rss)
            if warmed is None and sum(outcomes.values()) >= warm_at:
                warmed = rss
            time.sleep(0.2)
        seconds = time.monotonic() - started
        # Runs of disconnected visitors end when Gradio notices the closed stream (its next
        # message or heartbeat): wait for that, up to a bound that only catches a hang (a busy
        # machine may take tens of seconds).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            gdp_threads(besides=threads_before)
            or runs_added(runs_before)
            or policy.queue.active() != (0, 0)
        ):
            time.sleep(0.05)
        gc.collect()
        final_rss = process.memory_info().rss
        written = app.soak_preview.files_written
        figures = {
            "runs": runs,
            "clients": clients,
            "seconds": round(seconds, 1),
            "outcomes": dict(outcomes),
            "threads_left": gdp_threads(besides=threads_before),
            "runs_registered": runs_added(runs_before),
            "queue_left": policy.queue.active(),
            "memory_start_mb": round(baseline / 2**20, 1),
            "memory_growth_from_start_mb": round((final_rss - baseline) / 2**20, 1),
            "memory_peak_growth_mb": round((peak - baseline) / 2**20, 1),
            "memory_growth_after_warm_up_mb": round((final_rss - (warmed or baseline)) / 2**20, 1),
            "final_image_files": written["done"],
            "preview_files": sum(n for status, n in written.items() if status != "done"),
        }
    finally:
        app.close()
    problems = []
    lost = {k: v for k, v in figures["outcomes"].items() if k.startswith("lost")}
    if lost:
        problems.append(f"lost runs: {lost}")
    if sum(figures["outcomes"].values()) != runs:
        problems.append("not every run was accounted for")
    if figures["threads_left"] or figures["runs_registered"] or figures["queue_left"] != (0, 0):
        problems.append("stuck: threads, runs or queue places left behind")
    if figures["preview_files"]:
        problems.append(f"{figures['preview_files']} preview files written")
    growth = figures["memory_growth_after_warm_up_mb"]
    if growth > memory_bound:
        problems.append(f"memory grew {growth} MB after warm-up (> {memory_bound})")
    figures["problems"] = problems
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-bound", type=float, default=30.0)
    args = parser.parse_args()
    figures = soak(args.runs, args.clients, args.seed, args.memory_bound)
    print(json.dumps(figures, indent=2))
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
