"""The local diffusers backend, on real (tiny, random-weight) SD 1.x and SDXL pipelines that are
built once per session, saved to disk and loaded back with ``from_pretrained``."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from step_counter import StepCounter

from gradio_diffusion_preview import (
    Failed,
    Finished,
    GenerationRequest,
    InvalidRequest,
    RunControl,
    Started,
    Step,
    validate_request,
)
from gradio_diffusion_preview.backends.diffusers import run as run_module
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.tiny import KINDS
from gradio_diffusion_preview.backends.diffusers.x0 import X0Tracker

pytestmark = pytest.mark.slow
SIZE = {"width": 64, "height": 64}
BUSY_LOOP = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"
"""A process that keeps one core busy, for at most 15 minutes should nothing stop it."""


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(cache_size=2)


@pytest.fixture(params=KINDS)
def model(request, tiny_models) -> str:
    return tiny_models[request.param]


def resolve(backend, **fields) -> GenerationRequest:
    fields = {"prompt": "a red fox in the snow", "steps": 4, "seed": 7, **SIZE, **fields}
    return validate_request(GenerationRequest(**fields), backend)


def run(backend, control: RunControl | None = None, **fields) -> list:
    return list(backend.generate(resolve(backend, **fields), control or RunControl()))


def finished(events) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def test_importing_the_package_and_registering_the_backend_imports_no_torch():
    code = (
        "import sys, gradio_diffusion_preview as g\n"
        "backend = g.get_backend('diffusers')\n"
        "g.list_plugins()\n"
        "assert backend.display_name == 'Local diffusers'\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_capabilities_describe_the_backend():
    backend = DiffusersBackend()
    caps = backend.capabilities
    assert (backend.id, backend.display_name, backend.location) == (
        "diffusers",
        "Local diffusers",
        "local",
    )
    assert caps.any_model and caps.finish_early and caps.step_previews and caps.cancel
    assert caps.negative_prompt and caps.seed and caps.guidance
    assert caps.size_multiple == 8 and caps.max_batch == 4
    assert set(caps.options) == {"scheduler", "previewer", "device", "dtype"}


def every_step_ran(counter: StepCounter, events: list, total: int) -> bool:
    """The pipeline ran (at least: PNDM repeats a timestep) ``total`` iterations and the Step
    events came in order, the last one at ``total``. Steps are handed over latest-wins: a
    consumer thread that a loaded machine leaves waiting gets the newest step, not a backlog,
    so one may be passed over."""
    seen = [e.step for e in events if isinstance(e, Step)]
    assert seen == sorted(set(seen)) and seen[-1] == total, seen
    return counter.count >= total


def test_a_preview_of_the_declared_size_at_every_step(backend, model):
    with StepCounter(backend) as counter:
        events = run(backend, model=model, steps=8, width=64, height=96)
    started, steps = events[0], [e for e in events if isinstance(e, Step)]
    assert isinstance(started, Started)
    assert started.total_steps == 8 and started.preview_size == (8, 12)
    assert every_step_ran(counter, events, 8)
    for step in steps:
        assert step.total_steps == 8
        assert isinstance(step.preview, np.ndarray) and step.preview.dtype == np.uint8
        assert step.preview.shape == (12, 8, 3)
    final = finished(events)
    assert [image.size for image in final.images] == [(64, 96)]
    assert final.seeds == [7] and not final.early
    assert final.metadata["previewer"] == "latent_rgb"


def test_the_same_seed_gives_the_same_image_and_another_seed_another(backend, model):
    first = finished(run(backend, model=model, seed=11)).images[0]
    again = finished(run(backend, model=model, seed=11)).images[0]
    other = finished(run(backend, model=model, seed=12)).images[0]
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_a_batch_of_two_gives_two_images_and_one_tiled_preview(backend, model):
    events = run(backend, model=model, num_images=2, seed=20)
    started = events[0]
    assert started.num_images == 2 and started.seeds == [20, 21]
    assert started.preview_size == (16, 8)
    previews = [e.preview for e in events if isinstance(e, Step)]
    assert previews and all(p.shape == (8, 16, 3) for p in previews)
    final = finished(events)
    assert final.seeds == [20, 21] and len(final.images) == 2
    assert all(image.size == (64, 64) for image in final.images)
    # Each image comes from its own seed: the second is (nearly) the single image of seed 21.
    single = finished(run(backend, model=model, seed=21)).images[0]
    difference = np.abs(np.asarray(final.images[1], int) - np.asarray(single, int))
    assert difference.max() <= 2


def test_cancel_stops_the_pipeline_within_one_step(backend, model):
    control = RunControl()
    with StepCounter(backend) as counter:
        events = []
        for event in backend.generate(resolve(backend, model=model, steps=40), control):
            events.append(event)
            if isinstance(event, Step) and event.step == 3:
                control.cancel()
                counter.mark()
    assert counter.after_signal <= 1
    assert not any(isinstance(e, Finished | Failed) for e in events)
    assert backend.active_runs == 0


def test_closing_the_generator_stops_the_pipeline(backend, model):
    """What happens when a client disconnects: Gradio closes the handler's generator."""
    control = RunControl()
    with StepCounter(backend) as counter:
        events = backend.generate(resolve(backend, model=model, steps=40), control)
        for event in events:
            if isinstance(event, Step) and event.step == 2:
                counter.mark()
                break
        events.close()  # returns once the pipeline thread has stopped
        assert counter.after_signal <= 1
        assert backend.active_runs == 0  # the pipeline thread has ended


def test_finish_early_decodes_the_current_estimate(backend, model):
    control = RunControl()
    with StepCounter(backend) as counter:
        events = []
        for event in backend.generate(resolve(backend, model=model, steps=30), control):
            events.append(event)
            if isinstance(event, Step) and event.step == 3:
                control.finish_early()
                counter.mark()
        assert counter.after_signal <= 1
    final = finished(events)
    assert final.early
    assert [image.size for image in final.images] == [(64, 64)]
    assert final.metadata["steps_done"] <= 4


@pytest.mark.parametrize("ending", ["done", "cancel", "finish early"])
def test_an_ended_run_is_freed_without_a_garbage_collection(
    backend, tiny_sd15, monkeypatch, ending
):
    """Once a run ends, however it ends, its scheduler, the tensors the scheduler keeps and the
    x0 tracker are freed by reference counting, and on the CPU the backend makes no full
    garbage collection: one takes about 0.3 s with the GIL held (every other request of the
    app waits) in a process with torch, diffusers and Gradio loaded. The tracker's wrapper of
    ``scheduler.step`` and the scheduler referred to each other, so each run stayed in memory
    until Python's cycle collector came round, and a cancel or early finish collected."""
    made = []
    track = X0Tracker.__init__

    def tracked(self, scheduler):
        track(self, scheduler)
        made.append((weakref.ref(self), weakref.ref(scheduler)))

    monkeypatch.setattr(X0Tracker, "__init__", tracked)
    collections = []
    monkeypatch.setattr(run_module, "release_memory", lambda *args: collections.append(args))
    control = RunControl()
    gc.collect()
    gc.disable()  # what is freed here is freed by reference counting alone
    try:
        for event in backend.generate(resolve(backend, model=tiny_sd15, steps=8), control):
            if isinstance(event, Step) and event.step == 2:
                {"cancel": control.cancel, "finish early": control.finish_early}.get(
                    ending, lambda: None
                )()
        assert backend.active_runs == 0
        assert len(made) == 1 and [ref() for ref in made[0]] == [None, None]
    finally:
        gc.enable()
    assert collections == []


def test_a_model_missing_from_the_cache_fails_offline_with_the_fix(backend, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    events = run(backend, model="gdp-tests/not-a-real-model")
    assert len(events) == 1 and isinstance(events[0], Failed)
    failed = events[0]
    assert failed.reason == "model_not_found"
    assert "'gdp-tests/not-a-real-model' is not in the local Hugging Face cache" in failed.message
    assert "HF_HUB_OFFLINE=1" in failed.message
    assert "hf download gdp-tests/not-a-real-model" in failed.message
    assert "local folder" in failed.message


def test_a_missing_folder_is_reported_as_not_found(backend, tmp_path):
    failed = run(backend, model=str(tmp_path / "nowhere"))[-1]
    assert isinstance(failed, Failed) and failed.reason == "model_not_found"
    assert "does not exist" in failed.message
    (tmp_path / "empty").mkdir()
    failed = run(backend, model=str(tmp_path / "empty"))[-1]
    assert failed.reason == "model_not_found" and "model_index.json" in failed.message


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"scheduler": "warp-drive"}, ["options.scheduler='warp-drive'", "Euler a", "DPM++ 2M"]),
        ({"previewer": "crystal-ball"}, ["options.previewer", "latent_rgb", "taesd:<folder"]),
        ({"dtype": "int4"}, ["options.dtype='int4'", "bfloat16"]),
        ({"device": "tpu"}, ["options.device='tpu'", "cuda:N"]),
    ],
)
def test_bad_option_values_are_refused_before_the_run_with_the_valid_choices(
    backend, tiny_models, options, words
):
    """The central validation checks options through DiffusersOptions: the refusal names the
    option, the value and what is allowed, and generate never sees the request."""
    with pytest.raises(InvalidRequest) as refused:
        resolve(backend, model=tiny_models["sd15"], options=options)
    assert all(word in str(refused.value) for word in words), str(refused.value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("euler_a", "Euler a"),
        ("dpm++_karras", "DPM++ 2M Karras"),
        ("pndm", "PLMS"),
        ("DEFAULT", "Default"),
        ("euler a", "Euler a"),
    ],
)
def test_old_sampler_names_are_aliases_of_automatic1111s(backend, tiny_models, old, new):
    request = resolve(backend, model=tiny_models["sd15"], options={"scheduler": old})
    assert request.options == {"scheduler": new}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_absent_device_is_refused(backend, tiny_models):
    failed = run(backend, model=tiny_models["sd15"], options={"device": "cuda"})[-1]
    assert failed.reason == "invalid_request" and "not available" in failed.message


@pytest.mark.parametrize(
    "scheduler", ["euler", "euler_a", "dpm++", "dpm++_karras", "ddim", "pndm", "unipc"]
)
def test_each_scheduler_runs_with_a_preview_per_step(backend, tiny_models, scheduler):
    with StepCounter(backend) as counter:
        events = run(backend, model=tiny_models["sd15"], steps=5, options={"scheduler": scheduler})
    assert events[0].total_steps == 5 and counter.count >= 5, "the pipeline ran every step"
    steps = [e for e in events if isinstance(e, Step)]
    # latest wins: on a loaded machine a step the consumer had no turn for is replaced by the
    # next one, so the steps seen rise to the last, each with its own preview
    assert [e.step for e in steps] == sorted({e.step for e in steps}) and steps[-1].step == 5
    assert all(e.preview is not None for e in steps)
    final = finished(events)
    expected = {
        "euler": "EulerDiscrete",
        "euler_a": "EulerAncestral",
        "dpm++": "DPMSolver",
        "dpm++_karras": "DPMSolver",
        "ddim": "DDIM",
        "pndm": "PNDM",
        "unipc": "UniPC",
    }
    assert final.metadata["scheduler"].startswith(expected[scheduler])
    a1111 = {"euler": "Euler", "euler_a": "Euler a", "dpm++": "DPM++ 2M", "ddim": "DDIM"}
    a1111 |= {"dpm++_karras": "DPM++ 2M Karras", "pndm": "PLMS", "unipc": "UniPC"}
    assert final.metadata["sampler"] == a1111[scheduler]  # the name A1111's PNG Info reads


def test_the_default_sampler_is_reported_by_its_automatic1111_name(backend, tiny_models):
    """No scheduler asked for: the run reports the model's own by A1111's name (the tiny SD
    1.5 pipeline's EulerDiscreteScheduler is Euler), so the result and the PNG never say a
    class name."""
    final = finished(run(backend, model=tiny_models["sd15"], steps=2))
    assert final.metadata["scheduler"] == "EulerDiscreteScheduler"
    assert final.metadata["sampler"] == "Euler"


def test_the_lms_scheduler_runs_or_says_what_it_needs(backend, tiny_models):
    try:
        import scipy  # noqa: F401
    except ImportError:
        failed = run(backend, model=tiny_models["sd15"], options={"scheduler": "lms"})[-1]
        assert failed.reason == "invalid_request" and "pip install scipy" in failed.message
    else:
        finished(run(backend, model=tiny_models["sd15"], options={"scheduler": "lms"}))


def test_negative_prompt_and_guidance_change_the_image(backend, model):
    plain = finished(run(backend, model=model, seed=3)).images[0]
    negative = finished(run(backend, model=model, seed=3, negative_prompt="blurry")).images[0]
    guided = finished(run(backend, model=model, seed=3, guidance=2.0)).images[0]
    assert not np.array_equal(np.asarray(plain), np.asarray(negative))
    assert not np.array_equal(np.asarray(plain), np.asarray(guided))


def test_a_tiny_decoder_from_a_local_folder_previews_at_full_size(backend, tiny_models, tmp_path):
    from diffusers import AutoencoderTiny

    folder = tmp_path / "taesd-random"
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    ).save_pretrained(folder)
    events = run(
        backend, model=tiny_models["sd15"], num_images=2, options={"previewer": f"taesd:{folder}"}
    )
    assert events[0].preview_size == (128, 64)
    previews = [e.preview for e in events if isinstance(e, Step) and e.preview is not None]
    assert previews and all(p.shape == (64, 128, 3) for p in previews)
    assert finished(events).metadata["previewer"] == f"taesd ({folder})"


def test_taesd_without_local_weights_falls_back_to_latent_rgb(backend, tiny_models):
    final = finished(run(backend, model=tiny_models["sd15"], options={"previewer": "taesd"}))
    assert final.metadata["previewer"].startswith("latent_rgb (")
    assert "hf download madebyollin/taesd" in final.metadata["previewer"]


def test_previews_can_be_switched_off(backend, tiny_models):
    events = run(backend, model=tiny_models["sd15"], options={"previewer": "none"})
    assert events[0].preview_size is None
    assert all(e.preview is None for e in events if isinstance(e, Step))


def test_out_of_memory_is_reported_with_the_sizes_and_the_backend_recovers(backend, model):
    def exhaust(iteration: int, total: int) -> None:
        if iteration == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    backend.step_listeners.append(exhaust)
    try:
        events = run(backend, model=model, num_images=2, steps=9)
    finally:
        backend.step_listeners.remove(exhaust)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.reason == "out_of_memory"
    for words in ("64x64 x 2 image(s)", "9 steps", "cpu", "float32", "Try a smaller size"):
        assert words in failed.message, failed.message
    # the other cached pipeline was unloaded to make room; this one stays
    assert [key[0] for key in backend.loaded_models()] == [str(Path(model).resolve())]
    assert finished(run(backend, model=model)).images[0].size == (64, 64)


def test_concurrent_requests_to_one_pipeline_are_serialised(backend, tiny_models):
    model = tiny_models["sd15"]
    expected = {
        seed: np.asarray(finished(run(backend, model=model, seed=seed)).images[0])
        for seed in (31, 32)
    }
    results: dict[int, np.ndarray] = {}

    def worker(seed: int) -> None:
        results[seed] = np.asarray(finished(run(backend, model=model, seed=seed)).images[0])

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (31, 32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(np.array_equal(results[seed], expected[seed]) for seed in (31, 32))


def test_loaded_pipelines_are_kept_in_a_small_lru_cache(tiny_models):
    backend = DiffusersBackend(cache_size=1)
    finished(run(backend, model=tiny_models["sd15"], steps=2))
    finished(run(backend, model=tiny_models["sdxl"], steps=2))
    assert [key[0] for key in backend.loaded_models()] == [tiny_models["sdxl"]]
    assert backend.loaded_models()[0][1:] == ("cpu", "float32")


@pytest.fixture
def busy_cores() -> Iterator[list[subprocess.Popen]]:
    """Another process per core, each spinning in a busy loop, for the length of the test."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(cores or 2)]
    yield spinners
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def test_the_conformance_kit_passes_on_busy_cores(backend, tiny_models, busy_cores):
    """The backend's one full run of the kit, while every core is kept busy by other processes
    (as on a shared CI machine): the kit counts the steps run after cancel and finish early
    instead of timing them, and only the run's own threads' files count, so load cannot fail
    it. (Each check reads SD 1.x; SDXL's runs, cancel and finish early are tested above.)"""
    from gradio_diffusion_preview.testing import check_backend

    # random weights keep nothing of an input picture in the latent: no preview can show it
    random_weights = ("image_to_image_preview",)
    report = check_backend(backend, model=tiny_models["sd15"], steps=5, skip=random_weights, **SIZE)
    assert not report.failed and set(report.skipped) == set(random_weights), str(report)
    assert all(spinner.poll() is None for spinner in busy_cores), "busy from start to end"


def test_the_default_previewer_is_the_tiny_decoder_on_a_gpu_and_latent_rgb_on_the_cpu():
    import torch

    from gradio_diffusion_preview.backends.diffusers.run import default_previewer

    assert default_previewer(torch.device("cpu")) == "latent_rgb"
    assert default_previewer(torch.device("cuda", 1)) == "auto"
    assert default_previewer(torch.device("mps")) == "auto"
