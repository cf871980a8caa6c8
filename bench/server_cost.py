"""Question 2: server cost per frame, from the latent to the bytes on the wire.

Both paths start from the same SD 1.x-size latent (4x64x64) and the same cheap latent-to-RGB
projection (the baseline is given this project's previewer, its best case):

- this project: x0 estimate, the RGB preview (what the step callback does), the JPEG data URL
  (``encode_preview``), the component's ``postprocess`` of the new ``RunState``, Gradio's
  streaming diff against the previous value and its JSON serialisation (the event-stream
  message);
- (a) ``gr.Image``: the same preview upscaled to the displayed 512 px as a PIL image,
  ``gr.Image.postprocess`` (encode, hash, write a cache file), the diff and JSON of its
  ``FileData``, and reading the file back as the server does when the page fetches it.

Target: this project at least 50 times cheaper than (a) (in its cheapest format for CPU).
"""

from __future__ import annotations

import statistics
import tempfile

from frame_cost import timed
from rows import Row

FORMATS = ("webp", "jpeg", "png")


def measure(pool=None, tiny: bool = False) -> tuple[list[Row], dict]:
    import torch

    repeats = 5 if tiny else 100
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other under load
    try:
        return _measure(repeats)
    finally:
        torch.set_num_threads(threads)


def _measure(repeats: int) -> tuple[list[Row], dict]:
    import gradio as gr
    import orjson
    import torch
    from frame_cost import sd_scheduler
    from frames import upscaled
    from gradio import utils

    from gradio_diffusion_preview import DiffusionPreview, RunState
    from gradio_diffusion_preview.backends.diffusers.latent_preview import (
        LatentRGBPreviewer,
        PreviewPlan,
    )
    from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker
    from gradio_diffusion_preview.preview_encoding import encode_preview

    torch.manual_seed(0)
    scheduler = sd_scheduler()
    tracker = X0Tracker(scheduler)
    sample = torch.randn(1, 4, 64, 64) * scheduler.init_noise_sigma
    noise = torch.randn(1, 4, 64, 64)
    for timestep in scheduler.timesteps[:6]:  # a run six steps in
        scheduler.scale_model_input(sample, timestep)
        sample = scheduler.step(noise, timestep, sample, return_dict=False)[0]
    plan = PreviewPlan.create(LatentRGBPreviewer("sd1", 4), 512, 512, 1, 8)
    component = DiffusionPreview()
    state = RunState(status="running", step=5, total_steps=30, backend="diffusers", model="m")
    previous = component.postprocess(state).model_dump()
    step = [6]

    def ours() -> bytes:
        array = plan.preview(tracker.estimate(noise, timestep, sample)).result()
        step[0] += 1
        new = state.model_copy(update={"step": step[0], "preview": encode_preview(array)})
        value = component.postprocess(new).model_dump()
        return orjson.dumps(utils.diff(previous, value))

    results = {"ours": timed(ours, repeats)}
    with tempfile.TemporaryDirectory(prefix="gdp-bench-cost-") as cache:
        for fmt in FORMATS:
            image = gr.Image(format=fmt)
            image.GRADIO_CACHE = cache
            before = image.postprocess(
                upscaled(plan.preview(tracker.estimate(noise, timestep, sample)).result())
            ).model_dump()

            def baseline(image=image, before=before) -> bytes:
                array = plan.preview(tracker.estimate(noise, timestep, sample)).result()
                data = image.postprocess(upscaled(array))
                value = data.model_dump()
                message = orjson.dumps(utils.diff(before, value))
                with open(data.path, "rb") as file:  # the page's fetch of the frame
                    file.read()
                return message

            results[fmt] = timed(baseline, max(3, repeats // 4))
    medians = {name: statistics.median(times) for name, times in results.items()}
    cheapest = min(FORMATS, key=medians.__getitem__)
    times_cheaper = medians[cheapest] / medians["ours"]
    row = Row(
        "server_cost",
        "Server CPU per frame, latent to bytes on the wire (median)",
        "ms",
        medians["ours"],
        {f"(a) gr.Image {fmt}": medians[fmt] for fmt in FORMATS},
        f"{times_cheaper:.0f}x cheaper than (a) {cheapest}",
        ">= 50x cheaper than (a)",
        times_cheaper >= 50,
        "SD 1.x-size latent (4x64x64, a 512 px image), in-process, torch on one thread",
    )
    return [row], {"medians_ms": medians}
