"""``astream``: ``stream`` for async handlers. The same states, latest wins for a slow consumer,
cancel within a step when the consumer goes away; through a real Gradio server and
``gradio_client`` too, and the component's Stop in Chromium (the run's owner is the session)."""

from __future__ import annotations

import asyncio
import re
import time

import gradio as gr
import pytest
from browser_helpers import backend_app, generate, set_number, wait_view
from gradio_client import Client
from playwright.sync_api import expect
from toy_backends import CountingBackend, FailingBackend, Gate, registry_with

from gradio_diffusion_preview import DiffusionPreview, astream, stream


@pytest.fixture
def counting():
    return CountingBackend()


@pytest.fixture
def registry(counting):
    return registry_with(counting, FailingBackend())


async def collect(states, until=None) -> list:
    seen = []
    async for state in states:
        seen.append(state)
        if until is not None and until(state):
            break
    return seen


def test_astream_yields_what_stream_yields(registry, counting):
    fields = dict(registry=registry, prompt="p", steps=6, seed=5, num_images=2, min_interval=0)
    counting.step_seconds = 0.02
    sync = list(stream("counting", **fields))
    states = asyncio.run(collect(astream("counting", **fields)))
    assert states[-1].status == sync[-1].status == "done"
    assert states[-1].seeds == sync[-1].seeds == [5, 6] and len(states[-1].images) == 2
    running = [s for s in states if s.status == "running" and s.step > 0]
    assert [s.step for s in running] == sorted(s.step for s in running) and len(running) >= 3
    assert all(s.preview.startswith("data:image/jpeg;base64,") for s in running)


def test_a_bad_request_ends_in_an_error_state_outside_gradio(registry):
    [state] = asyncio.run(collect(astream("counting", registry=registry, prompt="p", steps=0)))
    assert (
        state.status == "error" and state.reason == "invalid_request" and "steps" in state.message
    )
    [state] = asyncio.run(collect(astream("no-such-backend", registry=registry, prompt="p")))
    assert state.status == "error" and "no-such-backend" in state.message


def test_closing_astream_cancels_the_backend_within_one_step(registry, counting):
    counting.step_seconds = 0.02

    async def run():
        states = astream("counting", registry=registry, prompt="p", steps=400, min_interval=0)
        await collect(states, until=lambda state: state.step >= 3)
        await states.aclose()  # what Gradio does on Stop, cancels=[...] and a closed tab
        return counting.steps_run

    stopped_at = asyncio.run(run())
    time.sleep(0.2)
    assert counting.steps_run - stopped_at <= 1
    assert counting.steps_run < 400


def test_a_slow_consumer_gets_the_newest_state_not_a_backlog(registry, counting):
    counting.step_seconds = 0.01

    async def run():
        seen = []
        states = astream("counting", registry=registry, prompt="p", steps=60, min_interval=0)
        async for state in states:
            seen.append((state.step, counting.steps_run))
            await asyncio.sleep(0.1)  # a busy event loop
        return seen

    seen = asyncio.run(run())
    assert seen[-1][0] == 60
    assert len(seen) < 20, "states that were not taken in time were replaced, not queued"
    assert all(made - shown <= 3 for shown, made in seen[2:-1]), seen


def test_through_gradio_client_states_stream_and_cancel_stops_the_backend(serve):
    backend = CountingBackend(step_seconds=0.05)
    registry = registry_with(backend, FailingBackend())

    async def generate_async(backend_id, steps):
        async for state in astream(backend_id, registry=registry, prompt="p", steps=int(steps)):
            yield state

    with gr.Blocks() as demo:
        backend_id, steps = gr.Textbox(), gr.Number()
        preview = DiffusionPreview()
        gr.Button().click(generate_async, [backend_id, steps], preview, api_name="generate")
    client = Client(serve(demo), verbose=False)
    final = client.predict("counting", 5, api_name="/generate")
    assert final["status"] == "done" and final["step"] == 5 and len(final["images"]) == 1
    with pytest.raises(Exception, match="Fix: name a model"):  # gradio_client's AppError
        client.predict("failing", 5, api_name="/generate")
    job = client.submit("counting", 400, api_name="/generate")
    deadline = time.monotonic() + 60
    while backend.steps_run < 3 + 5 + 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    time.sleep(1.0)  # Gradio's own cancel takes a moment to reach the generator
    stopped_at = backend.steps_run
    time.sleep(0.3)
    assert backend.steps_run - stopped_at <= 1 and backend.steps_run < 100


@pytest.mark.browser
def test_stop_and_use_this_preview_act_on_an_async_run_its_page_owns(open_page, serve):
    """The run's owner is the session of the event that started it (``astream`` runs the
    states in that event's context): "Use this preview" finishes it, Stop stops it."""
    gate = Gate()  # the backend's steps wait until this test lets them through
    backend = CountingBackend(gate=gate)
    page = open_page(serve(backend_app(backend, asynchronous=True)))
    set_number(page, "Steps", 300)
    gate.release(3)
    generate(page)
    page.get_by_test_id("preview-image").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Use this preview", exact=True).click()
    page.get_by_test_id("final-image").first.wait_for(timeout=10_000)
    expect(page.get_by_test_id("status-message")).to_have_text(
        re.compile(r"Finished early at step \d+ of 300")
    )
    first_run = backend.steps_run
    gate.release(2)
    generate(page, "a second run")
    wait_view(page, "running")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_view(page, "cancelled", timeout=5_000)
    deadline = time.monotonic() + 60  # only catches a hang
    while backend.runs_ended < 2:  # the run at the gate ends only when Stop reaches it
        assert time.monotonic() < deadline, "Stop never reached the async run"
        page.wait_for_timeout(20)
    gate.open()  # a run still going would now run all its steps
    page.wait_for_timeout(200)
    assert backend.steps_run - first_run <= 2, (first_run, backend.steps_run)
    assert not page.errors
    page.close()
