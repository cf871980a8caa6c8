"""The public-app recipe of docs/reliability.md, served: with one slot and ``max_queue = 1``,
four clients at once get what the policy's table says: one runs, one waits in line, two are
answered ``busy`` at once (not left waiting in Gradio's own queue)."""

from __future__ import annotations

import time

import gradio as gr
from gradio_client import Client
from toy_backends import CountingBackend, Gate, registry_with

from gradio_diffusion_preview import DiffusionPreview, stream
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy


def recipe_app(policy: Policy, registry) -> gr.Blocks:
    """The recipe's app, as docs/reliability.md writes it."""

    def generate(prompt, model, steps):
        yield from stream(
            "counting", prompt=prompt, model=model, steps=steps, policy=policy, registry=registry
        )

    with gr.Blocks() as demo:
        prompt, model, steps = gr.Textbox(), gr.Textbox(), gr.Number()
        button = gr.Button("Generate")
        preview = DiffusionPreview(keep_images_for=policy.image_max_age)
        run = button.click(
            generate,
            [prompt, model, steps],
            preview,
            api_name="generate",
            preprocess=False,
            concurrency_limit=policy.concurrency_limit,
        )
        preview.attach_run(run)
    return demo


def latest(job) -> dict | None:
    outputs = [value for value in job.outputs() if value]
    return outputs[-1] if outputs else None


def wait_for(condition, what: str, timeout: float = 60) -> None:
    """Poll until ``condition()``; the timeout only catches a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_limit_counts_every_place_in_the_lines_plus_one():
    entries = [
        CatalogueEntry(id="a", backend="one", model="a"),
        CatalogueEntry(id="b", backend="two", model="b"),
    ]
    assert Policy(catalogue=entries, max_queue=3, slots={"two": 2}).concurrency_limit == (
        (1 + 3) + (2 + 3) + 1
    )


def test_four_clients_at_once_one_runs_one_waits_two_are_busy(serve):
    gate = Gate()
    backend = CountingBackend(gate=gate)
    policy = Policy(
        catalogue=[CatalogueEntry(id="flat", backend="counting", model="flat")],
        limits=Limits(max_steps=50),
        max_queue=1,
        runs_per_client=4,  # four people, all on loopback
    )
    url = serve(recipe_app(policy, registry_with(backend)))
    jobs = [Client(url, verbose=False).submit("a", "flat", 3, api_name="/generate")]
    wait_for(lambda: (latest(jobs[0]) or {}).get("status") == "running", "the first run")
    jobs += [
        Client(url, verbose=False).submit("a", "flat", 3, api_name="/generate") for _ in range(3)
    ]
    try:
        wait_for(lambda: sum(job.done() for job in jobs) == 2, "two busy answers")
        busy = [latest(job) for job in jobs if job.done()]
        assert [state["reason"] for state in busy] == ["busy", "busy"], busy
        assert all("try again in about" in state["message"] for state in busy)
        waiting = [job for job in jobs[1:] if not job.done()]
        wait_for(lambda: (latest(waiting[0]) or {}).get("status") == "queued", "the waiting run")
        assert latest(waiting[0])["queue_position"] == 1
    finally:
        gate.open()
    finals = [job.result(timeout=60) for job in jobs if latest(job)["status"] != "error"]
    assert [state["status"] for state in finals] == ["done", "done"]
    assert policy.queue.active() == (0, 0)
