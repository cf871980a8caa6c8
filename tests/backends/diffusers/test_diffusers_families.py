"""Every text-to-image family of the installed diffusers, each as a tiny random-weight pipeline
built offline from the config diffusers' own tests use (``tests/support/tiny_families.py``),
run through ``stream()``: a preview at every step, the final image at the size asked (or the size
the run reports), cancel and finish early within a step (counted in denoising iterations), and
the conformance kit on SD 1.x, Flux, Qwen-Image and Lumina2.

``EXPECTED`` holds what each family does; every run checks its row, and the families table in
docs/backends/diffusers.md is rendered from it (``test_the_docs_table_is_these_results``), so
the table says what these tests saw. Rewrite it with ``python tests/support/families_table.py``.

Each family is an xdist group: one worker builds its pipeline and runs its tests, the families
spread over the workers.
"""

from __future__ import annotations

import os

import pytest
from families_table import (
    DOC,
    EXPECTED,
    HERE,
    MAPPING_NAMES,
    NOT_RUN,
    PIPELINE,
    STANDARDISED,
    render_table,
    table_in,
)
from step_counter import StepCounter, StepHold
from tiny_families import FAMILIES, build_family
from waiting import wait_for_runs_to_end

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.run_handles import cancel_run, finish_run

pytestmark = pytest.mark.slow
SIZE = 64
STEPS = 4


def family(name: str):
    """A family as a test parameter, in that family's xdist group."""
    return pytest.param(name, marks=pytest.mark.xdist_group(f"family-{name}"), id=name)


def families_param():
    return [family(name) for name in EXPECTED]


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    """One backend for the module, which keeps every family it loads (all of them take about
    240 MB): evicting a pipeline collects the garbage of the whole heap, as it must (a Flux or
    Qwen-Image transformer is held by reference cycles), and in a test worker with torch,
    diffusers, transformers and Gradio loaded each collection took 0.25 to 0.9 s, once for
    each of the 35 families."""
    return DiffusersBackend(cache_size=len(EXPECTED) + 1)


@pytest.fixture
def model(request, tiny_models_lazy) -> str:
    return tiny_models_lazy(request.param)


@pytest.fixture(scope="session")
def tiny_models_lazy(tmp_path_factory):
    """Builds a family's tiny pipeline on first use (sd15/sdxl: tiny.py's), shared by workers."""
    from gradio_diffusion_preview.backends.diffusers.tiny import KINDS, build_tiny_pipeline

    base = tmp_path_factory.getbasetemp()  # every worker's shared parent, as conftest's
    base = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def get(name: str) -> str:
        if name in KINDS:
            return str(build_tiny_pipeline(name, base / f"tiny-{name}"))
        return str(build_family(name, base / f"tiny-family-{name}"))

    return get


def family_of_folder(model: str) -> str:
    return next(key for key in EXPECTED if model.endswith(f"-{key}"))


def run(backend, model, **fields):
    fields = {"prompt": "a red fox", "steps": STEPS, "seed": 3, "width": SIZE, "height": SIZE}
    return stream(backend, model=model, min_interval=0.0, **fields)


@pytest.mark.parametrize("model", families_param(), indirect=True)
def test_a_family_previews_every_step_and_makes_the_size_it_reports(backend, model):
    name = family_of_folder(model)
    expected = EXPECTED[name]
    with StepCounter(backend) as iterations:
        states = list(run(backend, model))
    final = states[-1]
    assert final.status == "done", final.message
    assert iterations.count == STEPS
    # A preview at every step, as the page receives them: the newest wins, so on a busy
    # machine a step whose preview was overtaken by the next one's is skipped, never repeated
    # or reordered (the channel's rule, tested on its own in tests/core/test_channel.py).
    previewed = [state.step for state in states if state.status == "running" and state.preview]
    assert previewed and previewed == sorted(previewed), previewed
    assert set(previewed) <= set(range(1, STEPS + 1)), previewed
    made = final.images[0].size
    assert made == (final.params.width, final.params.height), "the size made is reported"
    assert made == expected.size_made, f"{name}: asked {SIZE}x{SIZE}, made {made}"


def signalled_run(backend, model, signal) -> tuple[list, StepCounter]:
    """The states of an 8-step run given ``signal`` (``cancel_run``, ``finish_run``) at its
    first state with a step, and its iterations counted. The run waits at its second
    iteration until the signal is given: with its pipeline already loaded, a tiny family's
    run can end before the test sees a state of it (seen: flux's step 8 of 8)."""
    with StepCounter(backend) as iterations, StepHold(backend, at=2) as hold:
        states = []
        for state in stream(
            backend,
            model=model,
            prompt="a fox",
            steps=8,
            width=SIZE,
            height=SIZE,
            min_interval=0.0,
        ):
            states.append(state)
            if state.step and iterations.at_signal is None:
                assert signal(state.run_id), state
                iterations.mark()
                hold.release()
    return states, iterations


@pytest.mark.parametrize("model", families_param(), indirect=True)
def test_a_family_cancels_within_a_step(backend, model):
    states, iterations = signalled_run(backend, model, cancel_run)
    assert states[-1].status == "cancelled", states[-1].message
    assert iterations.after_signal <= 1
    wait_for_runs_to_end(backend)


@pytest.mark.parametrize("model", families_param(), indirect=True)
def test_a_family_finishes_early_within_a_step(backend, model):
    name = family_of_folder(model)
    states, iterations = signalled_run(backend, model, finish_run)
    final = states[-1]
    assert final.status == "done", final.message
    assert iterations.after_signal <= 1
    # the backend's own count at the signal: the state seen may be behind it (latest wins)
    assert final.params.steps_done <= iterations.at_signal + 1
    assert final.params.steps_done < 8, "finished early"
    assert final.images[0].size == EXPECTED[name].size_made


@pytest.mark.parametrize(
    "model", [family(name) for name, row in EXPECTED.items() if row.kit], indirect=True
)
def test_the_conformance_kit_passes_on_the_family(backend, model):
    from gradio_diffusion_preview.testing import check_backend

    # random weights keep nothing of an input picture in the latent: no preview can show it
    report = check_backend(backend, model=model, steps=4, width=SIZE, height=SIZE,
                           skip=("image_to_image_preview",))  # fmt: skip
    assert not report.failed, str(report)


@pytest.mark.parametrize("name", sorted(NOT_RUN))
def test_a_family_not_run_here_says_why(name):
    pytest.skip(f"{name}: {NOT_RUN[name]}")


def test_every_text_to_image_family_of_diffusers_is_run_or_says_why():
    from diffusers.pipelines.auto_pipeline import AUTO_TEXT2IMAGE_PIPELINES_MAPPING

    assert set(FAMILIES) <= set(EXPECTED)
    run_here = {MAPPING_NAMES[name] for name in EXPECTED}
    assert run_here | set(NOT_RUN) == set(AUTO_TEXT2IMAGE_PIPELINES_MAPPING)
    assert not run_here & set(NOT_RUN)


@pytest.mark.parametrize("model", families_param(), indirect=True)
def test_a_family_row_says_what_its_pipeline_is(model):
    """The table's pipeline, preview and finish-early cells, from the saved pipeline itself."""
    from diffusers import DiffusionPipeline

    from gradio_diffusion_preview.backends.diffusers.finishing import honours_interrupt
    from gradio_diffusion_preview.backends.diffusers.latent_preview import (
        LatentRGBPreviewer,
        family_of,
        latent_channels_of,
    )

    row = EXPECTED[family_of_folder(model)]
    pipe = DiffusionPipeline.from_pretrained(model)
    assert type(pipe).__name__ == row.pipeline
    previewer = LatentRGBPreviewer(family_of(pipe), latent_channels_of(pipe))
    colours = {
        "sd1": "SD 1.x factors",
        "sdxl": "SDXL factors",
        "sd3": "SD3 factors",
        "flux": "Flux factors",
        "qwenimage": "Qwen-Image factors",
    }
    seen = colours.get(previewer.family) if previewer._weight is not None else STANDARDISED
    assert seen == row.preview
    assert (PIPELINE if honours_interrupt(pipe) else HERE) == row.finish


def test_the_docs_table_is_these_results():
    assert table_in(DOC.read_text(encoding="utf-8")) == render_table(), (
        "docs/backends/diffusers.md's families table is out of date: run "
        "python tests/support/families_table.py"
    )


@pytest.mark.xdist_group("family-wan")
def test_a_video_pipeline_is_refused_before_the_run(backend, tiny_models_lazy):
    """Wan passes the callback_on_step_end check, but makes video: refused with the reason
    before any step, instead of failing after the whole run."""
    with StepCounter(backend) as iterations:
        states = list(run(backend, tiny_models_lazy("wan")))
    final = states[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert "WanPipeline, a video pipeline" in final.message
    assert "Use a text-to-image model" in final.message
    assert iterations.count == 0


@pytest.mark.xdist_group("family-if")
def test_a_pixel_space_pipeline_with_only_the_older_callback_is_refused(backend, tiny_models_lazy):
    """DeepFloyd IF takes only the older ``callback`` (which PixArt runs with) but has no VAE:
    refused before any step, with that reason, not run to a finish early it cannot make."""
    with StepCounter(backend) as iterations:
        states = list(run(backend, tiny_models_lazy("if")))
    final = states[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert "IFPipeline, which has no callback_on_step_end, only the older callback" in (
        final.message
    )
    assert "no VAE (it denoises pixels" in final.message
    assert iterations.count == 0


@pytest.mark.parametrize("model", [family("qwenimage")], indirect=True)
def test_qwen_image_records_no_guidance_it_ignores(backend, model):
    """Qwen-Image's guidance_scale goes nowhere (not guidance-distilled): the run's settings and
    the PNG's parameters say no guidance, not the 7.5 the pipeline logged as ignored."""
    from gradio_diffusion_preview.generation_info import infotext

    final = list(run(backend, model))[-1]
    assert final.status == "done", final.message
    assert final.params.guidance is None
    assert "CFG scale" not in infotext(final.params)


@pytest.mark.xdist_group("family-prx")
def test_prx_tiny_text_encoder_does_not_load_back_as_the_table_says(tmp_path_factory, monkeypatch):
    """PRX's reason in NOT_RUN, checked: the test config's T5Gemma encoder saves, then loads as
    the default-sized encoder, so the saved pipeline cannot be loaded. When this fails, the
    installed transformers loads it: move PRX into EXPECTED.

    Filling that default-sized encoder (~590M parameters) with random numbers took ~23 s of
    this test's ~24 s, and nothing reads them: transformers' ``no_init_weights()`` cannot skip
    it (its ``normal_`` captured torch's), so the tensors' own ``normal_`` leaves them as
    allocated for the length of the load. The load itself runs unchanged, so a transformers
    that loads the tiny encoder still makes this test fail."""
    import torch
    from diffusers import DiffusionPipeline
    from testenv import shared_tmp
    from tiny_families import UNLOADABLE_FAMILIES

    assert "T5GemmaEncoder.from_pretrained" in NOT_RUN["prx"]
    folder = build_family("prx", shared_tmp(tmp_path_factory) / "tiny-family-prx")
    assert UNLOADABLE_FAMILIES["prx"].pipeline == "PRXPipeline"
    monkeypatch.setattr(torch.Tensor, "normal_", lambda tensor, *args, **kwargs: tensor)
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        DiffusionPipeline.from_pretrained(folder)


@pytest.mark.xdist_group("family-cascade")
def test_stable_cascade_is_refused_before_the_run_with_the_reason(backend, tiny_models_lazy):
    """Stable Cascade's tiny build (its combined pipeline has callback_on_step_end) saves its
    VQ-GAN as diffusers' ``PaellaVQModel``, which diffusers 0.42.1 cannot load from a folder:
    refused as a request it cannot run, with that reason, before any step (it was a
    backend_error quoting diffusers' ValueError)."""
    with StepCounter(backend) as iterations:
        states = list(run(backend, tiny_models_lazy("cascade")))
    final = states[-1]
    assert final.status == "error" and final.reason == "invalid_request", final.message
    assert "declares a Würstchen component (PaellaVQModel" in final.message
    assert "keeps only under pipelines/deprecated" in final.message
    assert "Use another text-to-image model" in final.message
    assert iterations.count == 0


@pytest.mark.parametrize(
    ("load_error", "names"),
    [
        # a tiny Würstchen from tests/pipelines/wuerstchen/test_wuerstchen_combined.py
        ("`diffusers` has no class `WuerstchenDiffNeXt`. The component was declared", "DiffNeXt"),
        # the released Würstchen repos' model_index.json
        ("wuerstchen is not one of the libraries Diffusers can load components from", "library"),
    ],
)
def test_wuerstchen_load_errors_are_read_as_the_reason(load_error, names):
    from gradio_diffusion_preview.backends.diffusers.loading import deprecated_wuerstchen_refusal

    why = deprecated_wuerstchen_refusal(load_error)
    assert why and names in why and "pipelines/deprecated" in why
    assert deprecated_wuerstchen_refusal("`diffusers` has no class `SomethingElse`.") is None
