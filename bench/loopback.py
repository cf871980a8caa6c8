"""Serving the benchmark apps on loopback and talking to them the way a browser does.

``AppServer`` starts one app of ``apps.py`` in its own process (its own Gradio cache folder),
and reads that process's CPU time, memory and cache files. ``run_client`` runs one generation
through Gradio's queue protocol (``POST /gradio_api/queue/join``, then the server-sent events of
``GET /gradio_api/queue/data``), fetching each image file a frame points to, as the page does,
and counting the bytes received (compressed, as on the wire; headers included). For the
AUTOMATIC1111-style app it also polls ``/internal/progress`` once a second, as that UI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate, br"}
POLL_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """One app of ``apps.py`` served on a free loopback port until ``close()``."""

    def __init__(self, kind: str, start_timeout: float = 180.0) -> None:
        self.kind = kind
        self.folder = Path(tempfile.mkdtemp(prefix=f"gdp-bench-{kind}-"))
        self.cache = self.folder / "cache"
        self.log = self.folder / "steps.jsonl"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GRADIO_TEMP_DIR": str(self.cache), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "apps.py"), kind, "--port", str(self.port)]
            + ["--log", str(self.log)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "server.log", "w"),  # noqa: SIM115
        )
        self.start_timeout = start_timeout
        self.started = time.monotonic()
        self.is_ready = False

    def ready(self) -> AppServer:
        """Waits until the app answers; raises with its log if it exits or never answers."""
        if self.is_ready:
            return self
        kind, start_timeout = self.kind, self.start_timeout
        deadline = self.started + start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{kind} app exited: {(self.folder / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/config", timeout=5).status_code == 200:
                    self.is_ready = True
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{kind} app did not start within {start_timeout:.0f} s")
            time.sleep(0.3)

    def steps(self) -> dict[str, dict[int, float]]:
        """Each token's step times (wall clock), from the app's step log."""
        times: dict[str, dict[int, float]] = {}
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                entry = json.loads(line)
                times.setdefault(entry["token"], {})[entry["step"]] = entry["t"]
        return times

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cache_files(self) -> int:
        return sum(1 for path in self.cache.rglob("*") if path.is_file())

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> AppServer:
        return self.ready()

    def __exit__(self, *exc) -> None:
        self.close()


class ServerPool:
    """The apps a benchmark run needs, each started once (all at once) and shared."""

    def __init__(self) -> None:
        self.servers: dict[str, AppServer] = {}

    def start(self, kinds) -> None:
        for kind in kinds:
            if kind not in self.servers:
                self.servers[kind] = AppServer(kind)

    def get(self, kind: str) -> AppServer:
        self.start([kind])
        return self.servers[kind].ready()

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


@dataclass
class Frame:
    step: int
    received: float  # wall clock, when the frame (and its file, if any) had arrived


@dataclass
class ClientRun:
    token: str
    frames: list[Frame] = field(default_factory=list)
    preview_bytes: int = 0  # bytes of the messages, files and polls that carried previews
    picture_bytes: int = 0  # of those, the pictures themselves (data URLs, file bodies)
    total_bytes: int = 0  # everything received for the run
    files: int = 0
    error: str | None = None  # why the client's run failed (its frames are then partial)


def header_bytes(response: httpx.Response) -> int:
    return 17 + sum(len(k) + len(v) + 4 for k, v in response.headers.raw)


def apply_edits(value, edits):
    """Applies Gradio's streaming diff (``[[action, path, value], ...]``) to ``value``."""
    for action, path, new in edits:
        if not path:
            value = new
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if action == "replace":
            parent[key] = new
        elif action == "append":
            parent[key] = parent[key] + new
        elif action == "add":
            if isinstance(parent, list):
                parent.insert(key, new)
            else:
                parent[key] = new
        elif action == "delete":
            del parent[key]
    return value


def _is_edits(data) -> bool:
    return isinstance(data, list) and all(
        isinstance(edit, list)
        and len(edit) == 3
        and edit[0] in ("replace", "append", "add", "delete")
        for edit in data
    )


async def run_client(
    http: httpx.AsyncClient, base: str, token: str, rate: float, steps: int, poll: bool = False
) -> ClientRun:
    """One generation as a page runs it; ``poll`` adds A1111's once-a-second progress poll."""
    run = ClientRun(token)
    session = uuid.uuid4().hex
    join = await http.post(
        f"{base}/gradio_api/queue/join",
        json={"data": [f"{token} {rate} {steps}"], "fn_index": 0, "session_hash": session},
    )
    join.raise_for_status()
    run.total_bytes += header_bytes(join) + join.num_bytes_downloaded
    done = asyncio.Event()
    poller = asyncio.create_task(_poll(http, base, run, done)) if poll else None
    try:
        await _read_events(http, base, session, run)
    finally:
        done.set()
        if poller is not None:
            await poller
    return run


async def _read_events(http: httpx.AsyncClient, base: str, session: str, run: ClientRun) -> None:
    value = None
    url = None
    generated = 0
    async with http.stream(
        "GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}
    ) as response:
        response.raise_for_status()
        run.total_bytes += header_bytes(response)
        counted = 0
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                wire = response.num_bytes_downloaded - counted  # bytes on the wire so far
                counted = response.num_bytes_downloaded
                run.total_bytes += wire
                if not raw.startswith(b"data:"):
                    continue
                message = json.loads(raw[5:])
                kind = message.get("msg")
                if kind not in ("process_generating", "process_completed"):
                    continue
                output = message.get("output") or {}
                if not message.get("success", True) or "error" in output and output["error"]:
                    raise RuntimeError(f"run {run.token} failed: {output.get('error')}")
                data = (output.get("data") or [None])[0]
                value = apply_edits(value, data) if _is_edits(data) else data
                if kind == "process_completed":
                    return
                generated += 1
                step, new_url = _frame_of(value, generated)
                if isinstance(value, dict) and "preview" in value:  # this project's value
                    if value.get("preview") and step is not None:
                        run.preview_bytes += wire
                        run.picture_bytes += len(value["preview"])
                        if not run.frames or run.frames[-1].step != step:
                            run.frames.append(Frame(step, time.time()))
                elif new_url and new_url != url:  # a gr.Image frame: the page fetches the file
                    url = new_url
                    got = await http.get(new_url if "://" in new_url else base + new_url)
                    got.raise_for_status()
                    fetched = header_bytes(got) + got.num_bytes_downloaded
                    run.files += 1
                    run.total_bytes += fetched
                    run.preview_bytes += wire + fetched
                    run.picture_bytes += got.num_bytes_downloaded
                    run.frames.append(Frame(step, time.time()))


def _frame_of(value, generated: int) -> tuple[int | None, str | None]:
    """``(step, file url)`` of a streamed value: this project's value carries its step; a
    ``gr.Image`` frame is the ``generated``-th value (Gradio drops no frames)."""
    if isinstance(value, dict) and "preview" in value:
        return value.get("step"), None
    if isinstance(value, dict) and value.get("url"):
        return generated, value["url"]
    return None, None


async def _poll(http: httpx.AsyncClient, base: str, run: ClientRun, done: asyncio.Event) -> None:
    shown = -1
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), POLL_SECONDS)
        response = await http.post(
            f"{base}/internal/progress", json={"id_task": run.token, "id_live_preview": shown}
        )
        response.raise_for_status()
        size = header_bytes(response) + response.num_bytes_downloaded
        run.total_bytes += size
        run.preview_bytes += size
        answer = response.json()
        if answer.get("live_preview"):
            run.picture_bytes += len(answer["live_preview"])
            shown = answer["id_live_preview"]
            run.frames.append(Frame(shown, time.time()))


async def run_clients(
    base: str, tokens: list[str], rate: float, steps: int, poll: bool = False
) -> list[ClientRun]:
    """``len(tokens)`` clients running one generation each, all at once."""
    limits = httpx.Limits(max_connections=4 * len(tokens) + 8)
    async with httpx.AsyncClient(headers=BROWSER_HEADERS, timeout=120, limits=limits) as http:
        got = await asyncio.gather(
            *(run_client(http, base, token, rate, steps, poll) for token in tokens),
            return_exceptions=True,
        )
    return [
        run if isinstance(run, ClientRun) else ClientRun(token, error=repr(run)[:200])
        for token, run in zip(tokens, got, strict=True)
    ]


def failures(runs: list[ClientRun]) -> str:
    """A note naming how many clients failed and the first reason, or ""."""
    failed = [run for run in runs if run.error]
    return f"; {len(failed)} client(s) failed: {failed[0].error}" if failed else ""


def lags_ms(runs: list[ClientRun], steps: dict[str, dict[int, float]]) -> list[list[float]]:
    """Per client, each received frame's age when it arrived: arrival minus its step's time."""
    return [
        [
            (frame.received - steps[run.token][frame.step]) * 1000
            for frame in run.frames
            if frame.step in steps.get(run.token, {})
        ]
        for run in runs
    ]
