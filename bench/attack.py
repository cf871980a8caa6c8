"""Attack the demo as a hostile visitor would (issue #25) and print what got through.

    PYTHONPATH=backend .venv/bin/python bench/attack.py         # about a minute on 2 cores
    PYTHONPATH=backend .venv/bin/python bench/attack.py --tiny  # a burst of 3: the tests' run

The demo (its catalogue, the bundled shapes model) is served by Gradio on loopback in this
process. The attack, over raw HTTP: bad inputs of many kinds (each must end in a clear refusal,
with no traceback in the log); one client opening 20 sessions (it must hold at most
``runs_per_client`` places); a 50 MB body (refused without the server's memory growing); uploads
(one over the bound, refused; an HTML page, served back only as a download); and a burst of 8
clients (3 with ``--tiny``) from as many addresses (each waiting run's first ETA against its real
wait). It prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOOD = ["diffusers", "shapes", "a red circle on a blue background", "", 4, 7.5, 1, 64, 64, 1, "{}"]
BIG_BODY = 50_000_000


@dataclass(frozen=True)
class Burst:
    """The ETA burst's size: ``clients`` visitors join ``gap`` seconds apart, each for a run of
    ``steps`` steps. With ``own_process`` the demo they join is served by a child process,
    which first warms its model with runs of ``warm_steps``; without, it is the attacked demo
    (the clients then share its process, and measure the waits less well)."""

    clients: int
    steps: int
    gap: float
    warm_steps: tuple[int, ...] = ()
    own_process: bool = True


FULL = Burst(clients=8, steps=40, gap=0.3, warm_steps=(4, 40, 4, 40, 40))
"""Runs of about 1-2 s here: waits long enough to compare with the ETA."""
TINY = Burst(clients=3, steps=40, gap=0.05, own_process=False)
"""Every piece of the attack, with a burst of three at the attacked demo (no second process to
start and warm): the runs after the first wait in line."""


def load_demo():
    spec = importlib.util.spec_from_file_location("demo_app", ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bad_inputs() -> list[tuple[str, dict | bytes]]:
    """(path, JSON body or raw bytes) of calls that must each be refused plainly."""
    changes = [
        (4, 0), (4, 10_000), (4, "many"), (4, True), (5, "nan"), (6, -5), (6, 2**80),
        (7, 65), (7, 100_000), (9, 0), (9, 99), (2, ""), (2, "x" * 5000), (3, "y" * 200_000),
        (1, "/etc/passwd"), (1, "../../models"), (0, "no-such-backend"),
        (10, '{"device": "cuda"}'), (10, '{"dtype": "float64"}'),
        (10, "[" * 100_000 + "]" * 100_000),
        (10, "not json"), (10, "[1, 2]"), (2, "red \ud800 circle"),
    ]  # fmt: skip
    calls: list[tuple[str, dict | bytes]] = []
    for index, value in changes:
        data = list(GOOD)
        data[index] = value
        calls.append(("/gradio_api/call/generate", {"data": data}))
    calls += [
        ("/gradio_api/call/nope", {"data": []}),
        ("/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "x"}),
        ("/gradio_api/run/predict", {"data": [], "fn_index": 999, "session_hash": "x"}),
        ("/gradio_api/call/generate", {"data": GOOD[:3]}),
        ("/gradio_api/call/generate", {"data": GOOD, "session_hash": "s" * 10_000}),
        ("/gradio_api/call/generate", {"data": GOOD, "event_data": "e" * 5_000_000}),
        ("/gradio_api/call/generate", b"{not json"),
    ]
    return calls


def refused(http: httpx.Client, path: str, body: dict | bytes) -> tuple[bool, str]:
    """Whether the call was refused with a message (a 4xx with text, or an event that ends in
    an error naming the problem), and that message."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = http.post(path, content=content, headers={"content-type": "application/json"})
    if 400 <= answer.status_code < 500:
        return bool(answer.text.strip()), answer.text[:120]
    if answer.status_code != 200 or "event_id" not in answer.text:
        return False, f"{answer.status_code} {answer.text[:100]}"
    result = http.get(f"{path}/{answer.json()['event_id']}").text
    if "event: error" not in result:
        return False, result[-120:]
    error = json.loads(result.split("event: error\ndata:", 1)[1].split("\n", 1)[0])
    message = (error or {}).get("error")
    return bool(message), str(message)[:120]


def main(burst: Burst) -> None:
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    stderr, sys.stderr = sys.stderr, _Tee(sys.stderr, log)
    demo_module = load_demo()
    policy = demo_module.demo_policy()
    demo = demo_module.build_demo(policy=policy)
    demo.queue(max_size=64)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    figures: dict = {}
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            refused(http, "/gradio_api/call/generate", {"data": GOOD})  # warm: load the model
            calls = bad_inputs()
            results = [refused(http, path, body) for path, body in calls]
            figures["bad_inputs"] = len(calls)
            figures["clear_refusals"] = sum(ok for ok, _ in results)
            figures["not_refused"] = [m for ok, m in results if not ok]
            figures["tracebacks_in_log"] = log.getvalue().count("Traceback")

            process = psutil.Process()
            before = process.memory_info().rss
            answers = [  # streamed from a generator: the client holds 1 MB at a time
                http.post(path, content=_chunks(BIG_BODY), headers=headers).status_code
                for path in ("/gradio_api/call/generate", "/gradio_api/queue/join")
                for headers in ({"content-length": str(BIG_BODY)}, {})  # declared, chunked
            ]
            figures["50MB_body"] = {
                "answers": answers,
                "memory_growth_mb": round((process.memory_info().rss - before) / 1e6, 1),
            }
            figures["uploads"] = uploads(http, policy.max_file_size)
        figures["one_client_20_sessions"] = one_client_many_sessions(url, policy)
        if not burst.own_process:
            figures["eta_burst"] = eta_burst(url, burst)
    finally:
        demo.close()
        sys.stderr = stderr
    if burst.own_process:
        with demo_in_another_process() as burst_url:
            figures["eta_burst"] = eta_burst(burst_url, burst)
    print(json.dumps(figures, indent=2))


@contextlib.contextmanager
def demo_in_another_process():
    """The demo served by a child process, so the burst's clients measure the waits from
    outside it: clients in the server's own process share its GIL and lag behind its states."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "backend")},
    )
    try:
        line = child.stdout.readline()  # the child prints its address once it serves
        if not line.startswith("http"):
            raise RuntimeError(f"the demo did not start in its own process: {line!r}")
        yield line.strip()
    finally:
        child.terminate()
        child.wait(30)


def serve() -> None:
    """The child of ``demo_in_another_process`` (the full run's burst): serve the demo, warm the
    model at two step counts, a few times (so the ETA knows a run's overhead and its time per
    step), print the address."""
    demo_module = load_demo()
    demo = demo_module.build_demo(policy=demo_module.demo_policy())
    demo.queue(max_size=64)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=120) as http:
        for steps in FULL.warm_steps:
            warm = list(GOOD)
            warm[4] = steps
            refused(http, "/gradio_api/call/generate", {"data": warm})
    print(url, flush=True)
    threading.Event().wait()


def uploads(http: httpx.Client, bound: int) -> dict:
    """An upload 1 MB over the bound (the demo's Edit tabs take uploads, each held to it), and
    an HTML page uploaded, then asked for back: it must come back as a download, never as a
    page on the app's own address."""
    over = http.post("/gradio_api/upload", files={"files": ("big.png", b"x" * (bound + 10**6))})
    page = b"<script>alert(document.cookie)</script>"
    taken = http.post("/gradio_api/upload", files={"files": ("evil.html", page)})
    html_page = [taken.status_code]
    if taken.status_code == 200:
        served = http.get(f"/gradio_api/file={taken.json()[0]}")
        html_page += [served.headers.get("content-type"), served.headers.get("content-disposition")]
    return {"over_the_bound": [over.status_code, over.text[:80]], "html_page": html_page}


def one_client_many_sessions(url: str, policy) -> dict:
    """20 session hashes from one address join at once: the places it holds."""
    with httpx.Client(base_url=url, timeout=120) as http:
        fn = next(
            d["id"] for d in http.get("/config").json()["dependencies"]
            if d.get("api_name") == "generate"
        )  # fmt: skip
        slow = list(GOOD)
        slow[4] = 20
        for index in range(20):
            http.post(
                "/gradio_api/queue/join",
                json={"data": slow, "fn_index": fn, "session_hash": f"script{index}"},
            )
        most, deadline = 0, time.monotonic() + 3
        while time.monotonic() < deadline:
            most = max(most, sum(policy.queue.active()))
            time.sleep(0.01)
    deadline = time.monotonic() + 120
    while policy.queue.active() != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"most_places_held": most, "runs_per_client": policy.runs_per_client}


def eta_burst(url: str, burst: Burst) -> list[dict]:
    """``burst.clients`` visitors from as many addresses start a ``burst.steps``-step run each:
    every waiting run's first ETA against the time it really waited for its start, and their
    ratio."""
    from gradio_client import Client

    clients = burst.clients
    data = list(GOOD)
    data[4] = burst.steps

    rows: list[dict] = []
    lock = threading.Lock()

    # connected before the burst: clients reading the app's API description at once would
    # slow the server's first runs, and the waits, by as much as the runs themselves
    clients_ready = [
        Client(url, verbose=False, headers={"x-forwarded-for": f"198.51.100.{index + 1}"})
        for index in range(clients)
    ]

    def visitor(index: int) -> None:
        job = clients_ready[index].submit(*data, api_name="/generate")
        first = None
        while not job.done():
            for state in job.outputs():
                if first is None and state.get("status") == "queued":
                    first = (state["queue_position"], state["eta"], time.monotonic())
                if first and state.get("status") == "running":
                    with lock:
                        rows.append(
                            {
                                "place": first[0],
                                "eta": first[1],
                                "waited": round(time.monotonic() - first[2], 2),
                            }
                        )
                        rows[-1]["ratio"] = round(
                            rows[-1]["eta"] / max(rows[-1]["waited"], 0.01), 2
                        )
                    job.result(timeout=300)
                    return
            time.sleep(0.02)

    threads = []
    for index in range(clients):
        threads.append(threading.Thread(target=visitor, args=(index,)))
        threads[-1].start()
        time.sleep(burst.gap)  # in order: each joins the line before the next
    for thread in threads:
        thread.join(600)
    return sorted(rows, key=lambda row: row["place"])


def _chunks(size: int, chunk: int = 1_000_000):
    """``size`` bytes of a JSON list that never ends, ``chunk`` at a time."""
    yield b"[" + b" " * (chunk - 1)
    for _ in range(size // chunk - 1):
        yield b" " * chunk


class _Tee(io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a smaller burst, as the tests run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    serve() if args.serve else main(TINY if args.tiny else FULL)
