"""What a new visitor meets in the widget (issue 21), in Chromium: no stale picture or details
from the previous run, only the buttons the running backend can honour, the place in line and
the expected wait, a short error block that clears, and a full-size viewer that fits a phone.

Runs are held at a ``Gate`` where a test must see them still going: each check is judged by
the order of states, never by how long something took.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import gradio as gr
import pytest
from browser_helpers import (
    TIMEOUT_MS,
    ToyBackend,
    backend_app,
    choose_backend,
    generate,
    open_viewer,
    probe,
    set_number,
    wait_view,
)
from playwright.sync_api import expect
from toy_backends import CountingBackend, Gate, WaitingBackend, registry_with

from gradio_diffusion_preview import Capabilities, DiffusionPreview, Failed, Status, stream
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


class GatedCounting(CountingBackend):
    """The counting backend, each step held at the test's gate; "Use this preview" works."""

    id = "gated"
    display_name = "Gated (test)"


class NoFinishEarly(CountingBackend):
    """Steps held at the gate; declares no finish-early (a ComfyUI endpoint, say)."""

    id = "no-finish"
    display_name = "No finish early (test)"
    capabilities = Capabilities(finish_early=False, default_size=(64, 64), steps_range=(1, 500))


class NoCancel(CountingBackend):
    """Steps held at the gate; declares that it cannot cancel."""

    id = "no-cancel"
    display_name = "No cancel (test)"
    capabilities = Capabilities(
        cancel=False, finish_early=False, default_size=(64, 64), steps_range=(1, 500)
    )


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


@pytest.fixture(scope="module")
def held_backends() -> tuple[CountingBackend, ...]:
    """The backends whose steps wait at a gate (each test gives them its own, ``gate``)."""
    return GatedCounting(), NoFinishEarly(), NoCancel()


@pytest.fixture(scope="module")
def shared_url(serve_module, held_backends) -> str:
    """One app for the module's tests of a plain app: the toy backend first (the default), a
    backend that fails with "busy", and the held ones."""
    failing = WaitingBackend(
        waits=[(Status("generating"), 0.05)],
        failure=Failed("The service is busy. Try again in a minute.", "busy"),
    )
    return serve_module(backend_app(ToyBackend(), failing, *held_backends))


@pytest.fixture(scope="module")
def line_app(serve_module) -> tuple[str, CountingBackend]:
    """One public app's setup (``fair_line_app``) for the tests of the app's line, and its
    held backend (each test gives it its own gate)."""
    backend = GatedCounting()
    return serve_module(fair_line_app(backend)), backend


@pytest.fixture
def gate(held_backends, line_app) -> Iterator[Gate]:
    """This test's gate, for every held backend of the module's apps; opened after the test,
    so that a run a failed test left held ends before the next test."""
    gate = Gate()
    for backend in (*held_backends, line_app[1]):
        backend.gate = gate
    yield gate
    for backend in (*held_backends, line_app[1]):
        backend.gate.open()


# --- item 7: nothing of the previous run stays -----------------------------------------------


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_a_new_run_shows_none_of_the_previous_runs_picture_or_details(
    open_page, shared_url, gate, dark
):
    """While a new run waits to start, the details do not show the previous prompt and seed;
    stopped before its first preview, the previous picture and its download button go."""
    url = shared_url
    page, other = open_page(url, dark=dark), open_page(url)
    set_number(page, "Steps", 3)
    generate(page, "the first lighthouse")
    page.get_by_test_id("download-link").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("info-prompt")).to_contain_text("the first lighthouse")

    # Another visitor's run holds the app's one slot: this page's next run waits in line.
    choose_backend(other, "gated")
    set_number(other, "Steps", 50)
    generate(other, "someone else")
    wait_view(other, "starting")
    choose_backend(page, "gated")
    set_number(page, "Seed", 4242)
    generate(page, "the second lighthouse")
    wait_view(page, "queued")
    expect(page.get_by_text("the first lighthouse")).to_have_count(0)
    assert page.get_by_test_id("download-link").count() == 0

    button(other, "Stop").click()  # this page's run starts, held before its first step
    expect(page.get_by_test_id("info-prompt")).to_contain_text("the second lighthouse")
    expect(page.get_by_test_id("info-seed")).to_have_text("4242")
    button(page, "Stop").click()
    wait_view(page, "cancelled")
    expect(page.get_by_test_id("tile")).to_have_count(0)
    assert page.get_by_test_id("download-link").count() == 0
    expect(page.get_by_test_id("info-prompt")).to_contain_text("the second lighthouse")
    expect(page.get_by_test_id("status-message")).to_have_text("Cancelled")
    assert not page.errors
    gate.open()


# --- item 8: only what the running backend can do ------------------------------------------


@pytest.mark.parametrize(
    ("backend_id", "finish", "stop"),
    [("gated", True, True), ("no-finish", False, True), ("no-cancel", False, False)],
)
def test_the_run_buttons_are_those_the_running_backend_can_honour(
    open_page, shared_url, gate, backend_id, finish, stop
):
    page = open_page(shared_url)
    choose_backend(page, backend_id)
    set_number(page, "Steps", 20)
    generate(page)
    gate.release(1)
    page.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    wait_view(page, "running")
    # The step's state and the buttons arrive together: the counter shows the preview's step.
    expect(page.get_by_test_id("progress-text")).to_contain_text("step 1 / 20")
    expect(button(page, "Use this preview")).to_have_count(1 if finish else 0)
    expect(button(page, "Stop")).to_have_count(1 if stop else 0)
    if finish:
        button(page, "Use this preview").click()
        page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    gate.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert not page.errors


# --- item 4: the place in line and the expected wait; the viewer on a phone ----------------


def fair_line_app(backend: CountingBackend) -> gr.Blocks:
    """A public app's setup: the backend has one slot in the policy's fair line, and Gradio
    lets every visitor's event in (the line, not Gradio's queue, makes them wait)."""
    registry = registry_with(backend)
    entry = CatalogueEntry(id="flat", backend=backend.id, model="flat")
    policy = Policy(catalogue=[entry], slots={backend.id: 1}, limits=Limits(max_steps=500))

    def run(prompt, steps):
        yield from stream(
            backend.id,
            model="flat",
            prompt=prompt,
            steps=int(steps),
            policy=policy,
            registry=registry,
        )

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        steps = gr.Number(3, label="Steps", precision=0)
        button_ = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation", height=360)
        event = button_.click(run, [prompt, steps], preview, concurrency_limit=8)
        preview.attach_run(event)
    return app


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_run_waiting_in_the_apps_line_shows_its_place_and_expected_wait(
    open_page, line_app, gate, size
):
    url = line_app[0]
    viewport = PHONE if size == "phone" else {}
    first, second = open_page(url), open_page(url, **viewport)
    gate.release(2)  # one short run first: the line then knows how long a run takes
    set_number(first, "Steps", 2)
    generate(first)
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)

    set_number(first, "Steps", 50)
    generate(first)  # holds the backend's one slot at its gate
    wait_view(first, "starting")
    generate(second, "wait your turn")
    wait_view(second, "queued")
    queue = second.get_by_test_id("queue-status")
    expect(queue).to_contain_text("Queued: position 1 of 1")
    # the wait left, or "starting soon" once the run ahead has overrun its estimate (a busy
    # machine slows the held run's page, not the line's arithmetic)
    expect(second.get_by_test_id("queue-eta")).to_contain_text(
        re.compile(r"~\d+s left in the queue|starting soon")
    )
    box = queue.bounding_box()
    assert box is not None and box["x"] >= 0
    assert box["x"] + box["width"] <= second.viewport_size["width"]
    expect(button(second, "Stop")).to_have_count(1)

    button(first, "Stop").click()
    gate.open()
    second.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert not second.errors


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_on_a_phone_the_viewer_covers_the_page_and_its_toolbar_keeps_one_row(
    open_page, shared_url, output_dir, dark
):
    page = open_page(shared_url, dark=dark, **PHONE)
    set_number(page, "Images", 2)
    set_number(page, "Steps", 2)
    generate(page)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    viewer = open_viewer(page, 0)
    page.screenshot(path=output_dir / f"viewer-{'dark' if dark else 'light'}.png")
    toolbar = page.get_by_test_id("viewer-toolbar")
    groups = toolbar.evaluate(probe("toolbar_rows"))
    assert [(g["rows"], g["cut"]) for g in groups] == [(1, False)] * 2, groups  # no wrap or cut
    assert groups[0]["top"] <= 24, groups  # the tools at the top, the image's actions below
    # Nothing of the page shows through: the viewer covers the screen, opaque.
    covers = viewer.evaluate(
        """el => { const r = el.getBoundingClientRect();
        const bg = getComputedStyle(el).backgroundColor;
        return [r.left, r.top, r.right, r.bottom, bg]; }"""
    )
    assert covers[:4] == [0, 0, 390, 844], covers
    assert covers[4] in ("rgb(0, 0, 0)", "rgba(0, 0, 0, 1)"), covers
    for name in ("Close", "Download"):
        assert page.get_by_test_id("viewer").get_by_role("button", name=name).count() + (
            page.get_by_test_id("viewer").get_by_role("link", name=name).count()
        ), f"{name} is reachable"
    page.keyboard.press("Escape")
    assert not page.errors


# --- item 2: a short error block that clears -----------------------------------------------


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_error_is_a_short_block_that_clears_when_a_new_run_starts(
    open_page, shared_url, gate, size
):
    page = open_page(shared_url, **(PHONE if size == "phone" else {}))
    choose_backend(page, "waiting")  # fails with "busy"
    generate(page)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The service is busy.")
    stage = page.get_by_test_id("stage").bounding_box()
    block = alert.bounding_box()
    assert stage and block
    assert block["height"] < stage["height"] / 2, (block, stage)  # as tall as its text
    assert stage["y"] <= block["y"] and block["y"] + block["height"] <= stage["y"] + stage["height"]

    choose_backend(page, "gated")
    generate(page, "again")  # held at the gate before its first step
    wait_view(page, "starting")
    expect(alert).to_have_count(0)
    gate.open()
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    assert not page.errors


# --- item 4: contrast of every text the widget draws, in the states the other test misses --


class StubbornGate(Gate):
    """A gate that holds steps even after "Use this preview": the button stays "Finishing…"
    until the test lets the step through."""

    def wait(self, control) -> bool:
        with self._cond:
            while not (self._open or self._permits):
                if control.cancelled:
                    return False
                self._cond.wait(0.02)
            if not self._open:
                self._permits -= 1
            return True


def low_contrast(page) -> list[dict]:
    return [item for item in page.evaluate(probe("contrast")) if item["ratio"] < item["required"]]


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_queued_finishing_and_phone_viewer_texts_meet_wcag_aa_contrast(
    open_page, line_app, gate, dark
):
    url, backend = line_app
    gate = backend.gate = StubbornGate()  # in place of this test's plain gate
    first, second = open_page(url, dark=dark), open_page(url, dark=dark, **PHONE)
    gate.release(2)
    set_number(first, "Steps", 2)
    generate(first)
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    seen: dict[str, list[dict]] = {}

    set_number(first, "Steps", 50)
    generate(first)
    gate.release(1)
    first.get_by_test_id("preview-image").first.wait_for(timeout=TIMEOUT_MS)
    button(first, "Use this preview").click()
    expect(first.get_by_role("button", name="Finishing…")).to_be_visible()
    seen["finishing"] = low_contrast(first)
    generate(second, "wait your turn")
    second.get_by_test_id("queue-eta").wait_for(timeout=TIMEOUT_MS)
    seen["queued"] = low_contrast(second)
    gate.open()
    first.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    second.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    seen["phone done"] = low_contrast(second)
    open_viewer(second, 0)
    seen["phone viewer"] = low_contrast(second)

    failures = {state: items for state, items in seen.items() if items}
    assert not failures, failures
    gate.open()
