"""Previews travel as in-memory data URLs: a long run through a real Gradio server writes no
preview file to the Gradio cache (only the final image is a file)."""

from pathlib import Path

import gradio as gr
from gradio_client import Client
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import DiffusionPreview, stream


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_a_run_of_100_preview_frames_writes_no_file_to_the_gradio_cache(
    serve, tmp_path, monkeypatch
):
    cache = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    registry = registry_with(CountingBackend(step_seconds=0.01))

    def run(prompt):
        yield from stream(
            "counting", registry=registry, prompt=prompt, steps=150, seed=1, min_interval=0
        )

    with gr.Blocks() as app:
        prompt = gr.Textbox()
        preview = DiffusionPreview()
        gr.Button("Generate").click(run, prompt, preview, api_name="generate")
    url = serve(app)
    before = files_under(cache)

    job = Client(url, verbose=False).submit("a cat", api_name="/generate")
    final = job.result(timeout=120)
    frames = [out for out in job.outputs() if out["status"] == "running" and out["preview"]]
    added = files_under(cache) - before

    assert len({f["preview"] for f in frames}) >= 100, len(frames)
    assert final["status"] == "done" and len(final["images"]) == 1
    assert len(added) == 1, f"expected only the final image, found {sorted(map(str, added))}"
    assert added.pop().suffix == ".png"
