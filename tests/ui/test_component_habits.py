"""gr.Image's constructor arguments and events on DiffusionPreview: ``buttons``, ``placeholder``,
``interactive``, ``select`` and ``clear`` (the page's side: tests/browser/test_browser_habits.py).
"""

from __future__ import annotations

import asyncio

import gradio as gr
import PIL.Image
import pytest
from gradio.events import EventData
from gradio.state_holder import SessionState

from gradio_diffusion_preview import DiffusionPreview


def props_of(preview: DiffusionPreview) -> dict:
    return preview.get_config()


def test_buttons_default_to_download_and_fullscreen_as_on_gr_image():
    assert DiffusionPreview().buttons == ["download", "fullscreen"]
    assert DiffusionPreview(buttons=["download"]).buttons == ["download"]
    assert props_of(DiffusionPreview(buttons=[]))["buttons"] == []


@pytest.mark.parametrize("bad", [["share"], ["download", "print"]])
def test_a_button_it_does_not_offer_is_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="choose from download, fullscreen") as error:
        DiffusionPreview(buttons=bad)
    assert repr(bad[-1]) in str(error.value)


def test_a_gr_button_or_a_bare_string_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="gr.Button instances are not supported"):
        DiffusionPreview(buttons=[gr.Button("Mine", render=False)])
    with pytest.raises(TypeError, match=r"buttons=\['download'\]"):
        DiffusionPreview(buttons="download")


def test_placeholder_reaches_the_page():
    assert props_of(DiffusionPreview(placeholder="# Empty\nrun it"))["placeholder"] == (
        "# Empty\nrun it"
    )
    assert props_of(DiffusionPreview())["placeholder"] is None


@pytest.mark.parametrize(
    ("interactive", "display_only", "clearable"),
    [(None, False, False), (False, True, False), (True, False, True)],
)
def test_interactive_tells_the_page_what_it_asked_for(interactive, display_only, clearable):
    props = props_of(DiffusionPreview(interactive=interactive))
    assert (props["display_only"], props["clearable"]) == (display_only, clearable)


def test_select_and_clear_are_events_an_app_can_listen_to():
    names = [str(event) for event in DiffusionPreview.EVENTS]
    assert {"select", "clear"} <= set(names)
    with gr.Blocks() as demo:
        preview = DiffusionPreview()
        out = gr.Textbox()
        preview.select(lambda: "selected", None, out)
        preview.clear(lambda: "cleared", None, out)
    triggers = [trigger for dep in demo.config["dependencies"] for trigger in dep["targets"]]
    assert (preview._id, "select") in triggers and (preview._id, "clear") in triggers


def run_event(demo: gr.Blocks, index: int, inputs: list, data: object = None) -> list:
    target = demo.fns[index]
    event = EventData(None, data)
    result = asyncio.run(
        demo.process_api(target, inputs, state=SessionState(demo), event_data=event)
    )
    return result["data"]


def test_a_select_handler_gets_the_clicked_images_index_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        preview = DiffusionPreview()
        out = gr.Textbox()

        def chosen(evt: gr.SelectData) -> str:
            image = PIL.Image.open(evt.value["image"]["path"])
            return f"{evt.index} {image.size} {evt.value['caption']}"

        preview.select(chosen, None, out)
    shown = preview.postprocess([PIL.Image.new("RGB", (8, 4)), PIL.Image.new("RGB", (6, 2))])
    payload = {"index": 1, "value": {"image": shown.images[1].model_dump(), "caption": "x"}}
    assert run_event(demo, 0, [], payload) == ["1 (6, 2) x"]


@pytest.mark.parametrize("kind", ["state", "pil", "numpy", "filepath"])
def test_after_clear_the_component_is_empty_as_an_input_and_as_an_output(kind):
    with gr.Blocks() as demo:
        preview = DiffusionPreview(type=kind)
        seen = gr.Textbox()
        preview.clear(lambda value: repr(value), preview, seen)
        preview.clear(lambda: None, None, preview)
    assert run_event(demo, 0, [None]) == ["None"]
    assert run_event(demo, 1, []) == [None]
