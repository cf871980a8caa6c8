"""In a gr.Row beside a Gallery and a Column, the component takes the width gr.Image would:
the same box with no arguments, with ``scale=2`` and with a ``width``, on one line with its
neighbours (it once took the whole row and pushed them onto lines of their own)."""

from __future__ import annotations

import gradio as gr
import pytest

from gradio_diffusion_preview import DiffusionPreview

VARIANTS = {"plain": {}, "scale2": {"scale": 2}, "width300": {"width": 300}}
BOXES = """ids => ids.map(id => {
    const box = document.getElementById(id).getBoundingClientRect();
    return [Math.round(box.x), Math.round(box.y), Math.round(box.width)];
})"""


@pytest.fixture(scope="module")
def layout_url(serve_module) -> str:
    with gr.Blocks() as demo:
        for name, settings in VARIANTS.items():
            for kind, make in (("image", gr.Image), ("preview", DiffusionPreview)):
                with gr.Row():
                    gr.Gallery(elem_id=f"{name}-{kind}-gallery")
                    make(elem_id=f"{name}-{kind}", **settings)
                    with gr.Column(elem_id=f"{name}-{kind}-column"):
                        gr.Textbox(label=f"{name} {kind}")
    return serve_module(demo)


@pytest.mark.parametrize("name", VARIANTS)
def test_in_a_row_the_preview_takes_the_widths_gr_image_takes(browser, layout_url, name):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(layout_url)
        page.locator(f"#{name}-preview [data-testid='diffusion-preview']").wait_for()
        boxes = {}
        for kind in ("image", "preview"):
            ids = [f"{name}-{kind}-gallery", f"{name}-{kind}", f"{name}-{kind}-column"]
            for element_id in ids:  # the page renders its components one by one
                page.locator(f"#{element_id}").wait_for()
            boxes[kind] = page.evaluate(BOXES, ids)
        image, preview = boxes["image"], boxes["preview"]
        # x and width of the gallery, the image or preview, and the column: equal
        assert [(x, w) for x, _, w in preview] == [(x, w) for x, _, w in image]
        # and all three on one line
        assert len({y for _, y, _ in preview}) == 1, preview
    finally:
        page.close()
