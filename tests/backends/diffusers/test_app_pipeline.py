"""The app's own loaded pipeline streams into the widget: the same pixels as calling it, the
same weights (no second copy), its call arguments passed through, its name shown."""

from __future__ import annotations

import gc
import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from gradio_client import Client

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.diffusers.app_pipeline import PipelineBackend, backend_for
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend

# one xdist group: the module fixture (a tiny pipeline with a LoRA, ~15-25 s) is made once,
# not once on each worker that --dist loadgroup hands some of these tests to
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("app_pipeline")]
APP = Path(__file__).parents[2] / "support" / "pipeline_app.py"
CALL = {"num_inference_steps": 4, "guidance_scale": 7.5, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def app(tiny_sd15):
    """The author's app module, loaded as Gradio would: its pipeline at module level."""
    import os

    os.environ["PIPELINE_APP_MODEL"] = tiny_sd15
    spec = importlib.util.spec_from_file_location("pipeline_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("pipeline_app", None)
    spec.loader.exec_module(module)
    return module


def direct(pipe, prompt: str, seed: int, **extra) -> np.ndarray:
    generator = [torch.Generator("cpu").manual_seed(seed)]
    image = pipe(prompt, generator=generator, **CALL, **extra).images[0]
    return np.asarray(image)


def weights(pipe) -> dict[str, int]:
    """Every parameter of the pipeline's models by name, with the address of its storage."""
    found = {}
    for part in ("unet", "vae", "text_encoder"):
        for name, parameter in getattr(pipe, part).named_parameters():
            found[f"{part}.{name}"] = parameter.data_ptr()
    return found


def unets() -> int:
    from diffusers import UNet2DConditionModel

    with warnings.catch_warnings():  # isinstance on torch's deprecated module aliases warns
        warnings.simplefilter("ignore")
        return sum(isinstance(item, UNet2DConditionModel) for item in gc.get_objects())


def final(states) -> object:
    states = list(states)
    assert states[-1].status == "done", states[-1].message
    return states


def test_the_served_app_streams_its_module_pipeline_with_the_lora_pixel_for_pixel(app, serve):
    assert app.LORA_LAYERS > 0
    before_weights, before_unets = weights(app.pipe), unets()
    job = Client(serve(app.demo), verbose=False).submit("a red circle", 7, api_name="/generate")
    result = job.result(timeout=300)
    assert result["status"] == "done", result["message"]
    previews = [out for out in job.outputs() if out["status"] == "running" and out["preview"]]
    assert previews, "no step previews were streamed"
    with PIL.Image.open(result["images"][0]) as image:
        streamed = np.asarray(image.convert("RGB"))
    assert np.array_equal(streamed, direct(app.pipe, "a red circle", 7))
    # the very weights the app loaded ran: no parameter moved, no second UNet was made
    assert weights(app.pipe) == before_weights
    gc.collect()
    assert unets() == before_unets
    assert backend_for(app.pipe).entry().pipe is app.pipe
    assert result["model"] == backend_for(app.pipe).name


def test_the_lora_is_part_of_what_ran(app, tiny_sd15):
    from diffusers import StableDiffusionPipeline

    plain = StableDiffusionPipeline.from_pretrained(tiny_sd15)
    states = final(stream(app.pipe, prompt="a red circle", seed=7, steps=4, width=64, height=64))
    image = np.asarray(states[-1].images[0])
    assert np.array_equal(image, direct(app.pipe, "a red circle", 7))
    assert not np.array_equal(image, direct(plain, "a red circle", 7))


def test_pipeline_arguments_pass_through_and_a_display_name_is_shown(app):
    backend = PipelineBackend(app.pipe, name="my-lora-model", call_args={"eta": 0.0})
    states = final(
        stream(
            backend,
            prompt="a red circle",
            seed=7,
            steps=4,
            width=64,
            height=64,
            options={"pipeline_args": {"guidance_rescale": 0.7}},
        )
    )
    image = np.asarray(states[-1].images[0])
    assert states[-1].model == "my-lora-model"
    assert np.array_equal(image, direct(app.pipe, "a red circle", 7, guidance_rescale=0.7))
    assert not np.array_equal(image, direct(app.pipe, "a red circle", 7))
    assert sum(state.step > 0 and state.preview is not None for state in states) >= 1


def test_model_equals_pipe_is_the_same_as_passing_the_pipe(app):
    states = final(
        stream(
            "diffusers", model=app.pipe, prompt="a red circle", seed=7, steps=4, width=64, height=64
        )
    )
    assert np.array_equal(np.asarray(states[-1].images[0]), direct(app.pipe, "a red circle", 7))


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"pipeline_args": {"num_inference_steps": 9}}, "set the request's 'steps' instead"),
        ({"pipeline_args": {"colour": "red"}}, "takes no argument 'colour'"),
        ({"adapters": {"style": 0.8}}, "needs LoRA adapters loaded"),
        ({"device": "cuda"}, "cannot move the app's pipeline"),
    ],
)
def test_bad_pass_through_arguments_are_refused_with_the_fix(app, options, says):
    states = list(stream(app.pipe, prompt="x", steps=2, width=64, height=64, options=options))
    assert states[-1].status == "error" and states[-1].reason == "invalid_request"
    assert says in states[-1].message, states[-1].message


def test_something_that_is_not_a_pipeline_is_refused_by_name():
    with pytest.raises(TypeError, match="needs a diffusers text-to-image pipeline"):
        PipelineBackend(object())
    with pytest.raises(ValueError, match="takes no argument 'colour'"):
        PipelineBackend(_Fake(), call_args={"colour": 1})


class _Fake:
    def __call__(self, prompt, callback_on_step_end=None, eta=0.0):
        raise AssertionError("not run")


def test_under_a_policy_visitors_set_only_what_the_catalogue_entry_allows(app):
    from gradio_diffusion_preview import Registry
    from gradio_diffusion_preview.policy import CatalogueEntry, Policy

    backend = PipelineBackend(app.pipe, name="my-lora-model")
    registry = Registry(load_entry_points=False, default_plugins=())
    registry.add_backends(backend)
    policy = Policy(
        catalogue=[
            CatalogueEntry(id="mine", backend="pipeline", model="my-lora-model"),
            CatalogueEntry(
                id="mine-tunable",
                backend="pipeline",
                model="my-lora-model",
                visitor_options=["pipeline_args"],
            ),
        ]
    )
    request = dict(prompt="a red circle", seed=7, steps=4, width=64, height=64)
    tuned = {"pipeline_args": {"guidance_rescale": 0.7}}
    refused = list(
        stream("pipeline", model="mine", options=tuned, policy=policy, registry=registry, **request)
    )
    assert refused[-1].reason == "invalid_request"
    assert "not an option visitors may set" in refused[-1].message
    states = final(
        stream(
            "pipeline",
            model="mine-tunable",
            options=tuned,
            policy=policy,
            registry=registry,
            **request,
        )
    )
    assert states[-1].model == "mine-tunable"
    assert np.array_equal(
        np.asarray(states[-1].images[0]),
        direct(app.pipe, "a red circle", 7, guidance_rescale=0.7),
    )


def test_the_samplers_offered_are_those_that_run_with_the_pipelines_scheduler(app):
    offered = backend_for(app.pipe).capabilities_for(None).option_choices["scheduler"]
    assert offered == DiffusersBackend.capabilities.option_choices["scheduler"]  # Euler, linear
    for scheduler in ("default", "dpm++", "unipc"):
        states = final(
            stream(
                app.pipe, prompt="x", steps=2, width=64, height=64, options={"scheduler": scheduler}
            )
        )
        assert states[-1].step == 2
