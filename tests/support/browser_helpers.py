"""Helpers for the Chromium tests: opening an app, driving its inputs, small apps around test
backends, and in-page probes (frames sampled every animation frame, text contrast)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
from playwright.sync_api import expect
from toy_backends import Gate, registry_with

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    DiffusionPreview,
    Finished,
    ModelInfo,
    Started,
    Step,
    astream,
    stream,
)

TIMEOUT_MS = 60_000
"""How long a browser test waits for what it expects: only a bound on a hang, never a measure
(a busy 2-core CI machine may take tens of seconds to paint what a quiet one paints at once)."""
expect.set_options(timeout=TIMEOUT_MS)  # Playwright's own default is 5 s
STEPS_RE = re.compile(r"step (\d+) / (\d+)")
PROBES = Path(__file__).with_name("browser_probes")
FRESH_STORAGE_JS = """
(() => {
  try {
    if (localStorage.getItem("gdp-test") !== %(test)s) {
      localStorage.clear();
      sessionStorage.clear();
      localStorage.setItem("gdp-test", %(test)s);
    }
  } catch (error) {}  // a page without storage (about:blank) has none to clear
})();
"""


def probe(name: str) -> str:
    """An in-page script from tests/browser_probes/ (plain JavaScript, one function)."""
    return (PROBES / f"{name}.js").read_text()


# --- driving a page ------------------------------------------------------------------------


def new_page(pages):
    """A new page in ``pages``; a test's second page in a window of its own, as a second
    visitor's browser would be. The context's ``new_page`` opens a tab, and Chromium draws
    only a window's front tab: a page behind another got its animation frames once a second,
    so each click there (Playwright waits two frames for the element to be still) took about
    2 s (a two-page test: 14 s, 4 s with a window each). A window costs more than a tab to
    open, so a test's first page is a tab (the front one). Chromium's way to open a window is
    asked of the context's first page (the blank one it starts with)."""
    launcher, *open_pages = pages.pages or [pages.new_page()]
    if not open_pages:
        return pages.new_page()
    session = pages.new_cdp_session(launcher)
    try:
        with pages.expect_page() as opened:
            session.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
    finally:
        session.detach()
    return opened.value


def open_app(
    pages, url: str, dark: bool = False, width: int = 1000, height: int = 900, test: str = ""
):
    """A new page showing the app at ``url``, once its DiffusionPreview has mounted (the page is
    closed if it never does). ``pages``: the browser context the page opens in. Tests take
    pages from the ``open_page`` fixture, which closes them after the test; ``test`` names it,
    so that the first page a test opens at an address starts with that address's storage
    empty, as a new visitor's would (the context is kept from test to test for its disk cache:
    a repeated page load compiles Gradio's scripts once)."""
    page = new_page(pages)
    page.set_viewport_size({"width": width, "height": height})
    if test:
        page.add_init_script(FRESH_STORAGE_JS % {"test": json.dumps(test)})
    # Clicks, fills and navigation wait for the page as long as any wait here: on a busy
    # machine Playwright's own 30 s default is not a bound on the app, only on the machine.
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(url + ("?__theme=dark" if dark else ""))
        page.get_by_test_id("diffusion-preview").wait_for(timeout=TIMEOUT_MS)
    except BaseException:
        page.close()
        raise
    page.errors = errors
    return page


def show_advanced(page, control) -> None:
    """Open the "Advanced settings" accordion when ``control`` is inside it, closed."""
    accordion = page.get_by_role("button", name="Advanced settings").first
    if accordion.count() and not control.first.is_visible():
        accordion.click()


def set_number(page, label: str, value: float) -> None:
    """Set a gr.Number, or the number box of a gr.Slider, labelled ``label`` (opening the
    "Advanced settings" it may be in)."""
    box = page.get_by_role("spinbutton", name=f"number input for {label}", exact=True).or_(
        page.get_by_role("spinbutton", name=label, exact=True)
    )
    show_advanced(page, box)
    expect(box.first).to_be_visible()
    kept = re.compile(_number_pattern(value))
    for _ in range(3):
        box.first.fill(str(value))
        box.first.press("Tab")
        # A box filled while Gradio still mounts the accordion's controls can get the
        # control's initial value back a moment later on a busy machine: checked once the
        # page has painted twice since, and typed again if so.
        after_two_paints(box.first.page)
        if kept.search(box.first.input_value()):
            return
    expect(box.first).to_have_value(kept)


def after_two_paints(page) -> None:
    """Returns once the page has painted twice: what the last input scheduled has run."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _number_pattern(value: float) -> str:
    """A pattern for how a number box may show ``value`` ("7", "7.0"; "0.5", "0.50")."""
    if float(value).is_integer():
        return rf"^{int(value)}(\.0*)?$"
    return rf"^{re.escape(str(value))}0*$"


def generate(page, prompt: str | None = "a lighthouse at dusk") -> None:
    if prompt is not None:
        page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()


def progress_steps(page) -> tuple[int, int]:
    match = STEPS_RE.search(page.get_by_test_id("progress-text").inner_text())
    assert match, page.get_by_test_id("progress-text").inner_text()
    return int(match[1]), int(match[2])


def check_download(page, index: int = 0) -> None:
    link = page.get_by_test_id("download-link").nth(index)
    href = link.get_attribute("href")
    assert href and link.get_attribute("download")
    response = page.request.get(href)
    assert response.status == 200, href
    assert response.headers["content-type"].startswith("image/"), response.headers
    assert len(response.body()) > 100


def expect_value(locator, value: str) -> None:
    expect(locator).to_have_value(value, timeout=TIMEOUT_MS)


def expect_text(locator, text: str) -> None:
    expect(locator).to_contain_text(text, timeout=TIMEOUT_MS)


def view_of(page) -> str:
    return page.get_by_test_id("diffusion-preview").get_attribute("data-view")


def wait_view(page, view: str, timeout: float = TIMEOUT_MS) -> None:
    expect(page.get_by_test_id("diffusion-preview")).to_have_attribute(
        "data-view", view, timeout=timeout
    )


def open_viewer(page, index: int = 0):
    page.get_by_role("button", name=f"View image {index + 1} full size").click()
    viewer = page.get_by_test_id("viewer")
    viewer.wait_for(timeout=TIMEOUT_MS)
    return viewer


# --- test backends and apps ----------------------------------------------------------------


class ToyBackend(Backend):
    """Fades a noise latent into a gradient; ``options['delay']`` seconds per step and
    ``options['start_delay']`` seconds before the first step."""

    id = "toy"
    display_name = "Toy"
    location = "local"
    capabilities = Capabilities(
        any_model=True,
        options={"delay": "seconds per step", "start_delay": "seconds before step 1"},
    )

    def models(self):
        return [ModelInfo(id="toy-1")]

    def generate(self, request, control):
        width, height = request.width, request.height
        pw, ph = max(1, width // 8), max(1, height // 8)
        yield Started(
            total_steps=request.steps,
            model=request.model,
            seeds=[request.seed + i for i in range(request.num_images)],
            width=width,
            height=height,
            num_images=request.num_images,
            preview_size=(pw, ph),
        )
        if control.wait_cancelled(request.options.get("start_delay", 0)):
            return
        noise = np.random.default_rng(request.seed).integers(0, 255, (ph, pw, 3)).astype(float)
        yy, xx = np.mgrid[0:ph, 0:pw]
        target = np.stack([xx / pw * 255, yy / ph * 255, np.full_like(xx, 128.0)], -1)
        for step in range(1, request.steps + 1):
            if control.cancelled:
                return
            time.sleep(request.options.get("delay", 0.05))
            t = step / request.steps
            yield Step(step, request.steps, ((1 - t) * noise + t * target).astype(np.uint8))
        final = PIL.Image.fromarray(target.astype(np.uint8)).resize((width, height))
        seeds = [request.seed + i for i in range(request.num_images)]
        yield Finished([final] * request.num_images, seeds, metadata={"sampler": "toy-euler"})


class StepCodeBackend(Backend):
    """Each preview says its step in its colour (red: step % 16 * 16, green: step // 16 * 16,
    for up to 255 steps), so a test can read which step a painted frame shows."""

    id = "step-code"
    display_name = "Step code"
    location = "local"
    capabilities = Capabilities(
        any_model=True, steps_range=(1, 255), options={"delay": "seconds per step"}
    )

    def __init__(self, gate: Gate | None = None) -> None:
        self.gate = gate  # each step waits there instead of the request's delay

    def models(self):
        return [ModelInfo(id="code")]

    def generate(self, request, control):
        yield Started(request.steps, "code", [request.seed], 64, 64, preview_size=(16, 16))
        for step in range(1, request.steps + 1):
            if control.cancelled:
                return
            if self.gate is None:
                time.sleep(request.options.get("delay", 0.03))
            elif not self.gate.wait(control):
                return
            colour = ((step % 16) * 16, (step // 16) * 16, 128)
            yield Step(step, request.steps, np.full((16, 16, 3), colour, np.uint8))
        yield Finished([PIL.Image.new("RGB", (64, 64), "white")], [request.seed])


def backend_app(
    *backends: Backend,
    width: int | None = None,
    height: int | None = None,
    options: dict | None = None,
    spacer: int = 0,
    watch_change: bool = False,
    watch_success: bool = False,
    asynchronous: bool = False,
    **component,
) -> gr.Blocks:
    """A small app around ``backends``: Prompt, Negative prompt, Backend, Steps, Seed, Images,
    Generate, and a DiffusionPreview (its keyword arguments: ``component``) with Stop, "Use
    this preview" and reuse wired. ``spacer`` pixels of empty space go above the preview;
    ``watch_change``/``watch_success`` add a "Last status"/"Last success" box that the
    component's change event / the run's ``.success()`` fills. ``asynchronous``: the handler
    is an ``async def`` streaming through ``astream``."""
    registry = registry_with(*backends)
    ids = [backend.id for backend in backends]

    def request(prompt, negative, steps, seed, images) -> dict:
        if prompt == "raise":
            raise RuntimeError("the handler itself failed")
        fields = {"width": width, "height": height} if width and height else {}
        return dict(
            registry=registry,
            prompt=prompt,
            negative_prompt=negative or "",
            steps=int(steps),
            seed=int(seed),
            num_images=int(images),
            options=options or {},
            **fields,
        )

    if asynchronous:  # one name either way: Gradio names the endpoint after it (/run)

        async def run(prompt, negative, backend, steps, seed, images):
            async for state in astream(backend, **request(prompt, negative, steps, seed, images)):
                yield state

    else:

        def run(prompt, negative, backend, steps, seed, images):
            yield from stream(backend, **request(prompt, negative, steps, seed, images))

    component.setdefault("height", 360)
    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        negative = gr.Textbox(label="Negative prompt")
        backend = gr.Dropdown(ids, value=ids[0], label="Backend")
        with gr.Row():
            steps = gr.Number(12, label="Steps", precision=0)
            seed = gr.Number(7, label="Seed", precision=0)
            images = gr.Number(1, label="Images", precision=0)
        button = gr.Button("Generate")
        if spacer:
            gr.HTML(f'<div style="height: {spacer}px"></div>')
        preview = DiffusionPreview(label="Generation", **component)
        run_event = button.click(run, [prompt, negative, backend, steps, seed, images], preview)
        preview.attach_run(run_event)
        preview.attach_reuse(prompt=prompt, negative_prompt=negative, seed=seed, steps=steps)
        if watch_change:
            last_status = gr.Textbox(label="Last status")
            preview.change(
                lambda value: value.status if value else "none", preview, last_status, queue=False
            )
        if watch_success:
            last_success = gr.Textbox(label="Last success")
            run_event.success(lambda p: p, prompt, last_success, queue=False)
    return app


def warm_demo() -> gr.Blocks:
    """The demo's Blocks, with its default model loaded first by a one-step run: the first run
    of a test then waits on no model loading (which takes minutes on a loaded machine)."""
    from testenv import load_demo_module

    demo = load_demo_module()
    for _ in stream(
        "diffusers", model=demo.default_model(), prompt="warm-up", steps=1, width=64, height=64
    ):
        pass
    return demo.build_demo()


def choose_backend(page, backend_id: str) -> None:
    page.get_by_label("Backend").click()
    page.get_by_role("option", name=backend_id, exact=True).click()
