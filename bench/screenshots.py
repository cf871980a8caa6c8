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
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
STEP = re.compile(r"step (\d+) / (\d+)")


def _demo():
    spec = importlib.util.spec_from_file_location("demo_app", ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.demo


def _mid_run(page, prompt: str) -> None:
    """Start a 50-step run and return once it has painted a preview a few steps in."""
    page.get_by_label("Prompt", exact=True).first.fill(prompt)
    page.get_by_role("button", name="Advanced settings").first.click()
    steps = page.get_by_role("spinbutton", name="number input for Steps", exact=True).first
    steps.fill("50")
    steps.press("Tab")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_test_id("preview-image").first.wait_for()
    page.wait_for_function(
        """() => { const t = document.querySelector('[data-testid="progress-text"]');
                   const m = t && t.innerText.match(/step (\\d+) \\/ (\\d+)/);
                   return m && Number(m[1]) >= 12; }"""
    )
    page.keyboard.press("Escape")


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
                _mid_run(page, "a yellow triangle on a red background")
                page.screenshot(path=out / name, full_page=full)
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
