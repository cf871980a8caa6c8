"""The remote Gradio backend against real apps shaped like popular text-to-image Spaces
(tests/support/remote_space_apps.py), each served by Gradio 6 (this venv) and by Gradio 5 (the
``.venv-gradio5`` that ``make test`` makes), in a subprocess on loopback.

Shown on both versions: a streaming FLUX-style ``infer`` relays each intermediate image as a
step preview, in order, then its final image; the run's value and PNG info carry the seed the
app actually used; Stop reaches the app within a step; a gallery app reports its one seed for
all its images; an app with no prompt runs; an app's ``gr.Error`` arrives as its text; seed
sliders capped at 2**31 - 1 get seeds within the cap.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from remote_gradio_client import gradio_backend
from remote_space_server import SpaceServer

from gradio_diffusion_preview import Failed, Finished, RunControl, Step, stream
from gradio_diffusion_preview.backends.remote_gradio.run import POLL_SECONDS
from gradio_diffusion_preview.component import DiffusionPreview
from gradio_diffusion_preview.request import InvalidRequest, build_request, validate_request
from gradio_diffusion_preview.testing import run_backend

# One worker runs the modules served by the Space-shaped apps: each worker that ran one started
# its own Gradio 6 and Gradio 5 servers (conftest.py's session fixture).
pytestmark = pytest.mark.xdist_group("space-apps")

SPACE_CAP = 2**31 - 1
RUNS = 20
FINAL_RED = 250


def red(image) -> int:
    return int(np.asarray(image.convert("RGB"))[0, 0, 0])


def seed_colour(image) -> tuple[int, int]:
    pixel = np.asarray(image.convert("RGB"))[0, 0]
    return int(pixel[1]), int(pixel[2])


def near(a: int, b: int) -> bool:
    """Equal up to lossy compression (Gradio sends gr.Image values as WebP, whose colour
    conversion moved a flat colour by 5 levels in one run)."""
    return abs(a - b) <= 10


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.02)


# --- seeds within the app's cap (issue #32) -----------------------------------------------


def test_runs_without_a_seed_all_finish_on_a_space_capped_at_2_31(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/seeded")
    tag = space_apps.tag()
    finals = [list(stream(backend, prompt=f"{tag} a fox"))[-1] for _ in range(RUNS)]
    assert [s.message for s in finals if s.status != "done"] == []
    used = space_apps.seeds_used(tag)
    assert len(used) == RUNS and all(0 <= seed <= SPACE_CAP for seed in used), used
    assert len(set(used)) > RUNS // 2  # drawn at random, not one fixed seed
    assert backend.capabilities.seed_range == (0, SPACE_CAP)
    assert [s.seeds for s in finals] == [[seed] for seed in used]


def test_a_seed_above_the_spaces_cap_is_refused_before_the_run(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/seeded")
    tag = space_apps.tag()
    with pytest.raises(InvalidRequest) as refused:
        validate_request(build_request(backend, {"prompt": tag, "seed": SPACE_CAP + 1}), backend)
    assert f"from 0 to {SPACE_CAP}" in str(refused.value), refused.value
    final = list(stream(backend, prompt=tag, seed=SPACE_CAP + 1))[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert f"from 0 to {SPACE_CAP}" in final.message
    assert space_apps.seeds_used(tag) == []  # refused here: the app was never called
    assert list(stream(backend, prompt=tag, seed=SPACE_CAP))[-1].status == "done"
    assert space_apps.seeds_used(tag) == [SPACE_CAP]


# --- a streaming FLUX-style Space: infer(...) yields (image, seed) every step -----------------


def gated_run(space_apps: SpaceServer, backend, tag: str, control: RunControl, **fields):
    """Run ``backend`` on a prompt tagged ``tag``, letting the app take one step at a time:
    the next only once this side has relayed the last (so no burst hides a preview)."""
    space_apps.hold(tag, 1)
    request = validate_request(
        build_request(backend, {"prompt": f"{tag} a fox", **fields}), backend
    )
    events = []
    for event in backend.generate(request, control):
        events.append(event)
        if isinstance(event, Step):
            space_apps.hold(tag, event.step + 1)
    return events


def release_after_final(space_apps: SpaceServer, tag: str) -> None:
    """Open the tag's gate once its app sent the final value and 20 polls have passed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "final sent" not in space_apps.lines(tag):
        time.sleep(0.02)
    time.sleep(20 * POLL_SECONDS)
    space_apps.open(tag)


def test_a_streaming_space_relays_every_intermediate_image_in_order(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/infer")
    tag = space_apps.tag()
    # The app holds its completion after the final yield until the backend has polled that
    # update many times (POLL_SECONDS each): the window where the final looks like a step.
    release = threading.Thread(target=release_after_final, args=(space_apps, tag), daemon=True)
    release.start()
    events = gated_run(space_apps, backend, tag, RunControl(), steps=5, seed=1234)
    release.join(timeout=120)
    assert "final sent" in space_apps.lines(tag)
    steps = [e for e in events if isinstance(e, Step)]
    # the final yield is the final image, never a fifth step's preview, also when it comes as
    # an update before the completion (Gradio 5 sends it so on a busy machine)
    assert [s.step for s in steps] == [1, 2, 3, 4], events
    assert all(s.total_steps == 5 for s in steps)
    assert all(near(red(s.preview), 20 * s.step) for s in steps), events
    finished = events[-1]
    assert isinstance(finished, Finished), events[-1]
    (image,) = finished.images
    assert near(red(image), FINAL_RED)
    # a seed was asked for: "Randomize seed" went off, and the app used it
    assert space_apps.seeds_used(tag) == [1234] and finished.seeds == [1234]


def test_the_seed_the_space_used_is_the_runs_and_its_pngs(space_apps: SpaceServer, tmp_path):
    # the seed input sent nowhere: the app randomises it and returns the one it used
    backend = gradio_backend(space_apps.url, api_name="/infer", inputs={"seed": None})
    tag = space_apps.tag()
    space_apps.open(tag)
    final = list(stream(backend, prompt=f"{tag} a fox", steps=3))[-1]
    assert final.status == "done", final.message
    (used,) = space_apps.seeds_used(tag)
    assert final.seeds == [used]
    green, blue = seed_colour(final.images[0])  # that seed's image
    assert near(green, used % 256) and near(blue, (used // 256) % 256), (green, blue, used)
    data = DiffusionPreview().postprocess(final)
    import PIL.Image

    with PIL.Image.open(data.images[0].path) as saved:
        assert f"Seed: {used}" in saved.text["parameters"], saved.text


def test_stop_reaches_the_space_within_a_step(space_apps: SpaceServer):
    # The app may take 2 steps, then waits at the third; Stop goes out at the first preview.
    # Gradio (4.44, 5.50 and 6.31 alike) closes a cancelled generator only between two of its
    # steps, and its /cancel answers only once the held step has run: held at a gate, the
    # generator stays open. So the gate opens once the app's /cancel has cancelled the job
    # (its cancels.log), and the app must then close well before its 30 steps (seen: at step
    # 3 or 4). Had Stop not reached it, it would run all 30 and close only at the end.
    backend = gradio_backend(space_apps.url, api_name="/infer")
    tag = space_apps.tag()
    space_apps.hold(tag, 2)
    request = validate_request(
        build_request(backend, {"prompt": f"{tag} a fox", "steps": 30}), backend
    )
    control = RunControl()
    events = []
    cancels = space_apps.cancels()
    for event in backend.generate(request, control):
        events.append(event)
        if isinstance(event, Step):
            control.cancel()
    assert not [e for e in events if isinstance(e, Finished | Failed)], events
    # Stop goes out on a thread of its own (the run's end does not wait for the app): the gate
    # opens once the app has taken the cancel, as a visitor's next step would come after it.
    # Opened earlier, the held steps would race the cancel (they take no time).
    wait_until(lambda: space_apps.cancels() > cancels, "the app to take the cancel")
    space_apps.open(tag)
    if space_apps.version == "gradio4":
        # Gradio 4.44 cancels the job's task and leaves its generator suspended: never
        # resumed, never closed. A whole run after the gate opened is the measure: had Stop
        # not reached the app, the held run (its steps take no time) would have run on.
        after = space_apps.tag()
        space_apps.open(after)
        final = list(stream(backend, prompt=f"{after} a fox", steps=2))[-1]
        assert final.status == "done", final.message
        assert space_apps.steps_run(tag) <= 3 and space_apps.closed(tag) == 0, space_apps.lines(tag)
        return
    wait_until(lambda: space_apps.closed(tag) == 1, "Stop to close the app's generator")
    assert space_apps.steps_run(tag) < 30, space_apps.lines(tag)


# --- a gallery app, an app without a prompt, an app that refuses ---------------------------


def test_a_gallery_space_claims_its_one_seed_for_each_image(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/gallery")
    tag = space_apps.tag()
    caps = backend.capabilities_for(None)
    assert caps.max_batch == 4 and caps.negative_prompt and caps.seed_range == (0, SPACE_CAP)
    final = list(stream(backend, prompt=f"{tag} a fox", seed=77, num_images=3, steps=2))[-1]
    assert final.status == "done", final.message
    assert len(final.images) == 3
    assert space_apps.seeds_used(tag) == [77]  # "Randomize seed" went off
    assert final.seeds == [77, 77, 77]  # the run's seed, not 77, 78, 79


def test_an_app_without_a_prompt_runs_and_says_the_prompt_goes_nowhere(space_apps: SpaceServer):
    # Gradio's demo/fake_diffusion: a steps slider, an image per step
    backend = gradio_backend(space_apps.url, api_name="/fake_diffusion")
    before = space_apps.steps_run("fake_diffusion")
    space_apps.open("fake_diffusion")
    rec = run_backend(backend, prompt="a red fox", steps=4)
    assert rec.finished is not None, rec.trace()
    assert near(red(rec.finished.images[0]), FINAL_RED)
    assert space_apps.steps_run("fake_diffusion") - before == 4
    notes = [e.message for e in rec.events if getattr(e, "message", None)]
    assert any("takes no prompt" in note for note in notes), notes
    steps = [s.step for s in rec.steps]
    assert steps == sorted(set(steps)) and all(1 <= s <= 4 for s in steps), steps


def test_an_apps_gr_error_arrives_as_its_text(space_apps: SpaceServer):
    backend = gradio_backend(space_apps.url, api_name="/refuse")
    final = list(stream(backend, prompt="a forbidden fox"))[-1]
    assert final.status == "error", final
    assert "This Space refuses that prompt: try another." in final.message
    assert "'This Space" not in final.message and '"This Space' not in final.message
    assert list(stream(backend, prompt="a fox"))[-1].status == "done"  # the app keeps serving
