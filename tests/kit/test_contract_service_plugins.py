"""The two service plugins of tests/support/service_plugins.py (an OpenAI-compatible images endpoint
and a Replicate-style prediction API, each on a loopback server) pass the conformance kit with
honest values: no seed for a service without one, no steps for a service that takes none, one
seed for a batch where the service takes one, the service's own progress count, and a fixed
list of sizes checked before the run. What they declare reaches the run's value and the PNG
as it is: nothing invented."""

from __future__ import annotations

import json

import pytest
from service_plugins import (
    OpenAIImagesBackend,
    PredictionBackend,
    openai_server,
    prediction_server,
)

from gradio_diffusion_preview import InvalidRequest, stream
from gradio_diffusion_preview.generation_info import image_metadata
from gradio_diffusion_preview.testing import BackendConformanceTests, check_backend


@pytest.fixture(scope="module")
def openai_url():
    server = openai_server()
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def prediction():
    server = prediction_server()
    yield server
    server.close()


class TestOpenAIImagesConformance(BackendConformanceTests):
    failing_request = {"prompt": "a forbidden fox"}  # the service's content filter refuses it

    @pytest.fixture(autouse=True)
    def _backend(self, openai_url):
        type(self).backend = OpenAIImagesBackend(openai_url)


class TestWideModelConformance(TestOpenAIImagesConformance):
    request = {"prompt": "a wide fox", "model": "image-wide"}  # its own sizes, its smallest


class TestPredictionConformance(BackendConformanceTests):
    request = {"prompt": "a red fox", "steps": 6, "width": 64, "height": 64}
    failing_request = {"prompt": "a forbidden fox"}

    @pytest.fixture(autouse=True)
    def _backend(self, prediction):
        type(self).backend = PredictionBackend(prediction.url)


def test_a_seedless_stepless_run_claims_no_seed_and_no_steps(openai_url):
    states = list(stream(OpenAIImagesBackend(openai_url), prompt="a red fox", num_images=2))
    last = states[-1]
    assert last.status == "done" and len(last.images) == 2, last.message
    assert last.seeds == [] and last.params.seed is None and last.params.steps is None
    assert all(state.step == 0 and state.total_steps == 0 for state in states)
    for index in range(2):
        chunks = image_metadata(last.params, None, index)
        assert "Seed" not in chunks["parameters"] and "Steps" not in chunks["parameters"]
        settings = json.loads(chunks["gradio_diffusion_preview"])
        assert "seed" not in settings and "steps" not in settings, settings


def test_a_seed_or_steps_given_to_a_service_without_them_is_refused_before_the_run(openai_url):
    backend = OpenAIImagesBackend(openai_url)
    for field, value in (("seed", 7), ("steps", 20)):
        [state] = stream(backend, prompt="a fox", **{field: value})
        assert state.status == "error" and state.reason == "invalid_request"
        assert f"{field}={value}" in state.message and "Fix: leave" in state.message


@pytest.mark.parametrize(
    ("model", "size", "listed"),
    [
        (None, (640, 640), "256x256, 512x512, 1024x1024"),
        ("image-wide", (512, 512), "1024x1024, 1792x1024, 1024x1792"),
    ],
)
def test_a_size_off_the_services_list_is_refused_before_the_run_naming_the_list(
    openai_url, model, size, listed
):
    from gradio_diffusion_preview.request import build_request, validate_request

    backend = OpenAIImagesBackend(openai_url)
    fields = {"prompt": "a fox", "width": size[0], "height": size[1], "model": model}
    with pytest.raises(InvalidRequest) as error:
        validate_request(build_request(backend, fields), backend)
    assert f"size='{size[0]}x{size[1]}'" in str(error.value)
    assert f"Fix: use one of: {listed} (width x height)." in str(error.value)
    wide = validate_request(build_request(backend, {"prompt": "a fox", "model": "image-wide"}),
                            backend)  # fmt: skip
    assert (wide.width, wide.height) == (1024, 1024)  # the model's own default, on its list


def test_a_batch_with_one_seed_says_that_seed_for_each_image(prediction):
    states = list(
        stream(PredictionBackend(prediction.url), prompt="a fox", steps=4, seed=99, num_images=2,
               width=64, height=64)
    )  # fmt: skip
    last = states[-1]
    assert last.status == "done" and last.seeds == [99, 99]
    steps = [(state.step, state.total_steps) for state in states if state.step]
    assert steps[0] == (1, 6) and (6, 6) in steps  # the service's own count: 4 + 2 refiner


def test_the_kit_still_demands_distinct_seeds_from_a_backend_that_declares_them(prediction):
    class Claims(PredictionBackend):
        id = "claims-per-image"
        capabilities = PredictionBackend.capabilities.model_copy(update={"seed_per_image": True})

    with pytest.raises(AssertionError) as error:
        check_backend(Claims(prediction.url), prompt="a fox", steps=3, width=64, height=64,
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert "a different seed for each image" in str(error.value)
    assert "fix: give image i of a batch the seed" in str(error.value)


def test_a_polled_backend_that_claims_exact_steps_is_told_to_declare_its_own_count(prediction):
    class Exact(PredictionBackend):
        id = "claims-exact"
        capabilities = PredictionBackend.capabilities.model_copy(update={"exact_steps": True})

    with pytest.raises(AssertionError) as error:
        check_backend(Exact(prediction.url), prompt="a fox", steps=3, width=64, height=64,
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert "every Step.total_steps to be 3" in str(error.value)
    assert "Capabilities(exact_steps=False)" in str(error.value)


def test_the_services_job_id_and_link_reach_the_value_and_the_json_chunk_not_the_infotext(
    prediction,
):
    states = list(stream(PredictionBackend(prediction.url), prompt="a fox", steps=2, seed=5,
                         width=64, height=64))  # fmt: skip
    last = states[-1]
    assert last.status == "done", last.message
    job_id = last.params.job_id
    assert job_id in prediction.predictions
    assert last.params.job_url == f"{prediction.url}/p/{job_id}"
    first_with_job = next(i for i, state in enumerate(states) if state.params.job_id)
    assert all(state.params.job_id == job_id for state in states[first_with_job:])
    chunks = image_metadata(last.params, 5, 0)
    settings = json.loads(chunks["gradio_diffusion_preview"])
    assert settings["job_id"] == job_id and settings["job_url"] == last.params.job_url
    assert job_id not in chunks["parameters"]  # A1111's infotext has no job ids


@pytest.mark.parametrize("job_url", ["javascript:alert(1)", "/v1/predictions/p1", "file:///etc"])
def test_a_job_link_that_is_not_http_fails_the_kit_and_never_reaches_the_value(prediction, job_url):
    from gradio_diffusion_preview import Status

    class BadLink(PredictionBackend):
        id = "bad-link"

        def generate(self, request, control):
            for event in super().generate(request, control):
                if isinstance(event, Status) and event.job_url:
                    event = Status(event.phase, job_id=event.job_id, job_url=job_url)
                yield event

    with pytest.raises(AssertionError) as error:
        check_backend(BadLink(prediction.url), prompt="a fox", steps=2, width=64, height=64,
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert "Status.job_url to be None or an http:// or https:// URL" in str(error.value)
    assert "fix: pass the absolute http(s) address" in str(error.value)
    last = list(stream(BadLink(prediction.url), prompt="a fox", steps=2, width=64, height=64))[-1]
    assert last.status == "done" and last.params.job_id and last.params.job_url is None


def test_a_batchs_images_reach_the_value_one_by_one_before_the_run_is_done(openai_url):
    from gradio_diffusion_preview import DiffusionPreview

    states = list(stream(OpenAIImagesBackend(openai_url), prompt="a red fox", num_images=3,
                         width=256, height=256))  # fmt: skip
    last = states[-1]
    assert last.status == "done" and len(last.images) == 3 and last.ready == []
    arriving = [state for state in states if state.status == "running" and state.ready]
    counts = [len(state.ready) for state in arriving]
    assert counts and counts == sorted(counts) and counts[-1] >= 1, counts
    assert all(len(state.images) == len(state.ready) for state in arriving)
    assert all(state.ready == sorted(state.ready) for state in arriving)
    # the value a browser receives while the run goes carries those images as files
    component = DiffusionPreview()
    wire = component.postprocess(arriving[-1])
    assert wire.status == "running" and len(wire.images) == len(arriving[-1].ready)
    assert len(wire.infotexts) == len(wire.images)
    # a later state of the run (more seconds gone) sends the same files, not new ones
    later = component.postprocess(arriving[-1].model_copy(update={"elapsed": 99.0}))
    assert [file.path for file in later.images] == [file.path for file in wire.images]


def test_an_image_that_arrived_mid_run_is_encoded_once_however_many_states_follow(
    openai_url, monkeypatch
):
    """Each state streamed after an ImageReady carries the image again; the component encodes
    it once (a large PNG takes a tenth of a second or more), not once per state. The done state,
    whose text holds the run's time, is encoded anew."""
    from gradio_diffusion_preview import DiffusionPreview
    from gradio_diffusion_preview import component as component_module

    states = list(stream(OpenAIImagesBackend(openai_url), prompt="a red fox", num_images=2,
                         width=256, height=256))  # fmt: skip
    mid_run = next(state for state in states if state.status == "running" and state.ready)
    encoded = []
    real_embed = component_module.embed_metadata
    monkeypatch.setattr(
        component_module,
        "embed_metadata",
        lambda image, text, fmt: encoded.append(image) or real_embed(image, text, fmt),
    )
    component = DiffusionPreview()
    files = [
        component.postprocess(mid_run.model_copy(update={"elapsed": 1.0 + tick, "step": tick}))
        for tick in range(20)
    ]
    assert len(encoded) == len(mid_run.images), f"{len(encoded)} encodes for 20 states"
    assert len({tuple(file.path for file in wire.images) for wire in files}) == 1
    done = component.postprocess(states[-1])
    assert done.status == "done" and len(encoded) == len(mid_run.images) + len(states[-1].images)


class _Sends:
    """An OpenAI-style backend whose images one by one break the kit's rule in one way."""

    @staticmethod
    def backend(url: str, how: str):
        from gradio_diffusion_preview import Finished, ImageReady

        class Broken(OpenAIImagesBackend):
            id = f"broken-{how}"

            def generate(self, request, control):
                for event in super().generate(request, control):
                    if isinstance(event, ImageReady) and how == "twice":
                        yield event
                    if isinstance(event, ImageReady) and how == "out_of_range":
                        event = ImageReady(request.num_images, event.image)
                    if isinstance(event, Finished) and how == "only_the_rest":
                        event = Finished(event.images[1:])
                    yield event

        return Broken(url)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("twice", "each image sent with ImageReady at most once"),
        ("out_of_range", "ImageReady.index from 0 to 1"),
        ("only_the_rest", "Finished to carry all 2 image(s), those sent with ImageReady too"),
    ],
)
def test_images_one_by_one_that_break_the_rule_fail_the_kit_with_a_fix(openai_url, how, expected):
    with pytest.raises(AssertionError) as error:
        check_backend(_Sends.backend(openai_url, how), prompt="a fox", num_images=2,
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert expected in str(error.value)
    assert "fix: send each image of the batch once, as ImageReady(index, image, seed)" in str(
        error.value
    )


@pytest.mark.parametrize("refuse", [False, True])
def test_a_cancel_passed_on_to_the_service_ends_with_its_answer(prediction, refuse):
    from gradio_diffusion_preview.run_engine import ENGINE, RunSpec

    prediction.refuse_cancels = refuse
    prediction.cancel_gate.clear()  # the service answers the cancel once the run said Stopping…
    try:
        handle = ENGINE.open()
        backend = PredictionBackend(prediction.url, poll=0.05)  # 42 polls to go: time to stop
        spec = RunSpec(backend, {"prompt": "a fox", "steps": 40, "width": 64, "height": 64})
        states = []
        for state in ENGINE.states(spec, handle):
            states.append(state)
            if state.params.job_id and not handle.control.cancelled:
                handle.cancel()  # Stop: the run goes on streaming until the service answers
            if state.message == "Stopping…":
                prediction.cancel_gate.set()
    finally:
        prediction.refuse_cancels = False
        prediction.cancel_gate.set()
    stopping = [state for state in states if state.message == "Stopping…"]
    assert stopping and states.index(stopping[0]) < len(states) - 1
    last = states[-1]
    assert states[0].capabilities.cancel_confirms
    assert last.status == "cancelled" and last.cancel_acknowledged is (not refuse)
    assert all(state.status == "running" for state in stopping)
    job_id = last.params.job_id
    if refuse:
        assert last.message.startswith("Cancel was refused by the service: the job may still run")
        assert "409" in last.message and job_id not in prediction.cancelled
    else:
        assert last.message == "Cancelled." and job_id in prediction.cancelled


def test_the_kit_holds_a_backend_that_confirms_cancels_to_its_answer(prediction):
    class Silent(PredictionBackend):
        id = "silent-cancel"

        @staticmethod
        def _cancel(client, prediction):  # cancels, but never says what the service answered
            client.post(prediction["urls"]["cancel"], timeout=5)
            return None

        def generate(self, request, control):
            yield from (e for e in super().generate(request, control) if e is not None)

    with pytest.raises(AssertionError) as error:
        check_backend(Silent(prediction.url), prompt="a fox", steps=3, width=64, height=64,
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert "as Capabilities(cancel_confirms=True) says" in str(error.value)
    assert "fix: after control.cancelled, pass the cancel on to the service" in str(error.value)


def test_an_answer_to_no_cancel_fails_the_kit(openai_url):
    from gradio_diffusion_preview import Cancelled, Finished

    class Confused(OpenAIImagesBackend):
        id = "confused"

        def generate(self, request, control):
            for event in super().generate(request, control):
                if isinstance(event, Finished):
                    yield Cancelled(True)
                yield event

    with pytest.raises(AssertionError) as error:
        check_backend(Confused(openai_url), prompt="a fox",
                      failing_request={"prompt": "a forbidden fox"})  # fmt: skip
    assert "Cancelled only as the last event of a cancelled run" in str(error.value)


@pytest.mark.parametrize(
    ("web", "shown"),
    [
        ("https://replicate.com/p/{id}", True),  # the service's own public page
        ("http://127.0.0.1:5000/p/{id}", False),  # loopback: the server itself
        ("http://10.0.3.7/p/{id}", False),  # a private network
        ("http://comfyui:8188/history/{id}", False),  # a bare intranet name
        ("http://localhost/p/{id}", False),
    ],
)
def test_a_public_app_shows_a_job_link_only_when_it_leaves_the_servers_network(
    prediction, web, shown
):
    """Under a policy (a public app) a job link into the server's own network never reaches a
    visitor (it names an internal address, and a visitor could not open it); the job id does,
    and so does a link to the service's public page. Without a policy, the link is kept."""
    from gradio_diffusion_preview import Status
    from gradio_diffusion_preview.plugins import Registry
    from gradio_diffusion_preview.policy import CatalogueEntry, Policy

    class LinkedAt(PredictionBackend):
        def generate(self, request, control):
            for event in super().generate(request, control):
                if isinstance(event, Status) and event.job_url:
                    link = web.format(id=event.job_id)
                    event = Status(event.phase, job_id=event.job_id, job_url=link)
                yield event

    registry = Registry()
    registry.add_backends(LinkedAt(prediction.url), name="linked")
    policy = Policy(catalogue=[CatalogueEntry(id="sdxl", backend="predictions", model="sdxl")])
    fields = {"model": "sdxl", "prompt": "a fox", "steps": 2, "width": 64, "height": 64}
    public = list(stream("predictions", registry=registry, policy=policy, **fields))[-1]
    own = list(stream("predictions", registry=registry, **fields))[-1]
    assert public.status == own.status == "done", (public.message, own.message)
    assert public.params.job_id and own.params.job_url == web.format(id=own.params.job_id)
    expected = web.format(id=public.params.job_id) if shown else None
    assert public.params.job_url == expected
