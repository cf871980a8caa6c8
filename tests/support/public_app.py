"""A small public app for server tests: a DiffusionPreview streaming a slow toy backend under a
policy, launched on loopback, and helpers to drive it as several visitors over raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
import httpx
from testenv import launch_loopback

from gradio_diffusion_preview import DiffusionPreview, Registry, stream
from gradio_diffusion_preview.policy import Policy


def build_app(policy: Policy, registry: Registry, backend: str) -> gr.Blocks:
    def generate(prompt, model, steps):
        yield from stream(
            backend, prompt=prompt, model=model, steps=steps, policy=policy, registry=registry
        )

    with gr.Blocks() as app:
        prompt = gr.Textbox()
        model = gr.Textbox()
        steps = gr.Number()
        preview = DiffusionPreview(keep_images_for=policy.image_max_age)
        run = gr.Button("Go").click(
            generate,
            [prompt, model, steps],
            preview,
            api_name="generate",
            preprocess=False,
            concurrency_limit=32,
        )
        preview.attach_run(run)
    return app


@contextmanager
def launched(app: gr.Blocks) -> Iterator[str]:
    app.queue(max_size=64)
    url = launch_loopback(app)
    try:
        yield url
    finally:
        app.close()


class Visitor:
    """One browser session talking to the queue over raw HTTP (what the page's JS does)."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.session = url, f"{name}-{time.monotonic_ns()}"
        self.http = httpx.Client(base_url=url, timeout=60)

    def fn_index(self, api_name: str | None = None, event: str | None = None) -> int:
        config = self.http.get("/config").json()
        for index, dep in enumerate(config["dependencies"]):
            if api_name is not None and dep.get("api_name") == api_name:
                return dep.get("id", index)
            if event is not None and any(t[1] == event for t in dep["targets"]):
                return dep.get("id", index)
        raise LookupError(api_name or event)

    def join(self, fn_index: int, data: list) -> str:
        response = self.http.post(
            "/gradio_api/queue/join",
            json={"data": data, "fn_index": fn_index, "session_hash": self.session},
        )
        response.raise_for_status()
        return response.json()["event_id"]

    def messages(self) -> Iterator[dict]:
        """The session's server-sent messages (queue estimations, values, completion)."""
        with self.http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": self.session}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:])

    def call_for_run(self, fn_index: int, run_id: str | None) -> httpx.Response:
        """A direct (unqueued) call about a run, as the page makes for Stop: the run id goes
        as the event's data, and as the component's value if the handler takes it; with
        ``run_id=None``, no event data, as an API client calls it."""
        config = self.http.get("/config").json()
        dep = next(d for i, d in enumerate(config["dependencies"]) if d.get("id", i) == fn_index)
        value = {"run_id": run_id, "status": "running"}
        return self.http.post(
            "/gradio_api/run/predict",
            json={
                "data": [value] if dep["inputs"] else [],
                "event_data": {"run_id": run_id} if run_id is not None else None,
                "fn_index": fn_index,
                "session_hash": self.session,
            },
        )

    def close(self) -> None:
        self.http.close()
