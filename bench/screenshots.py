"""Retake the screenshots in docs/ (and the README's) from the current demo, in Chromium.

    python bench/screenshots.py            # writes docs/screenshot*.png
    python bench/screenshots.py --quick --out DIR   # one: DIR/screenshot-light.png (a test)

Serves demo/app.py on loopback, starts a 50-step run of the bundled shapes model and takes
each picture mid-run (a preview on the stage, progress, Stop): desktop light (the README's
``docs/screenshot.png`` and ``docs/screenshot-light.png``), desktop dark, a 390x844 phone,
and the Compare tab with four models at 1366 px. Offline, no download: the bundled model.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HELD_AT = 13
"""The iteration at whose end each run waits for its picture: its first 12 steps have been
sent to the page by then."""
HOLD_CEILING = 300.0
"""Seconds a held run waits at most (only so that a broken page cannot hang the script)."""


class MidRunHold:
    """Holds each run of the demo's diffusers backend at ``HELD_AT`` until ``release()``.

    The page is pictured while the run waits, so every picture shows the same step. Without
    it a fast run (a quiet machine) or a slow page (a busy one) can reach its final image
    before the page paints a preview: the page paints only the newest state it has."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.held = threading.Event()
        self._go_on = threading.Event()

    def __call__(self, iteration: int, total: int) -> None:
        if iteration == HELD_AT:
            self.held.set()
            self._go_on.wait(HOLD_CEILING)

    def release(self) -> None:
        self._go_on.set()

    def __enter__(self) -> MidRunHold:
        self.backend.step_listeners.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.backend.step_listeners.remove(self)


def _demo():
    spec = importlib.util.spec_from_file_location("demo_app", ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.demo


def _mid_run(page, prompt: str, path: Path, full_page: bool) -> None:
    """Start a 50-step run, picture the page into ``path`` while the run is held after its
    12th step (its preview and progress painted), then stop the run."""
    from gradio_diffusion_preview.plugins import get_backend

    page.get_by_label("Prompt", exact=True).first.fill(prompt)
    page.get_by_role("button", name="Advanced settings").first.click()
    steps = page.get_by_role("spinbutton", name="number input for Steps", exact=True).first
    steps.fill("50")
    steps.press("Tab")
    with MidRunHold(get_backend("diffusers")) as hold:
        page.get_by_role("button", name="Generate", exact=True).click()
        if not hold.held.wait(HOLD_CEILING):
            raise RuntimeError(f"the run did not reach step {HELD_AT} in {HOLD_CEILING:g} s")
        page.get_by_test_id("preview-image").first.wait_for()
        page.wait_for_function(
            f"""() => {{ const t = document.querySelector('[data-testid="progress-text"]');
                       const m = t && t.innerText.match(/step (\\d+) \\/ (\\d+)/);
                       return m && Number(m[1]) >= {HELD_AT - 1}; }}"""
        )
        page.screenshot(path=path, full_page=full_page)
        page.keyboard.press("Escape")  # reaches the run before it goes on


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder (default: docs/)")
    parser.add_argument(
        "--quick", action="store_true", help="only the desktop light picture (tests/project)"
    )
    args = parser.parse_args(argv)
    take(args.out, quick=args.quick)


def take(out: Path, quick: bool = False) -> None:
    """Serve the demo and write its screenshots into ``out`` (only the light one if
    ``quick``)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    demo = _demo()
    _, url, _ = demo.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            shots = [
                ("screenshot-light.png", {"width": 1366, "height": 900}, "", False),
                ("screenshot-dark.png", {"width": 1366, "height": 900}, "?__theme=dark", False),
                ("screenshot-phone.png", {"width": 390, "height": 844}, "", True),
            ]
            for name, viewport, query, full in shots[:1] if quick else shots:
                page = browser.new_page(viewport=viewport, device_scale_factor=1)
                page.set_default_timeout(120_000)
                page.goto(url + query)
                page.get_by_test_id("diffusion-preview").first.wait_for()
                _mid_run(page, "a yellow triangle on a red background", out / name, full)
                page.close()
            if quick:
                return
            shutil.copyfile(out / "screenshot-light.png", out / "screenshot.png")
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_role("tab", name="Compare", exact=True).click()
            page.get_by_label("Bundled shapes · DDIM").check()
            page.get_by_role("button", name="Compare", exact=True).click()
            page.locator(".diffusion-compare-panels [data-testid='final-image']").nth(3).wait_for()
            page.screenshot(path=out / "screenshot-compare.png", full_page=True)
    finally:
        demo.close()


if __name__ == "__main__":
    main()
