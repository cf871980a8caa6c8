"""The hf-inference backend against a loopback Inference router (tests/fake_hf_router.py): the
requests it sends, waiting for a loading model or a rate limit, Stop mid-request, its own
deadline, offline mode, the token, model listings and settings, and the conformance kit.

What each failure looks like to a user (message, reason, retry_after) is tested end to end
through gradio_client in test_hf_inference_api.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from fake_hf_router import (
    FakeRouter,
    configure_environment,
    error,
    image,
    loading,
    rate_limited,
    serve_router,
    stall,
)

from gradio_diffusion_preview import (
    Failed,
    Finished,
    Registry,
    RunControl,
    Started,
    Status,
    stream,
    validate_request,
)
from gradio_diffusion_preview.backends.hf_inference.backend import HfInferenceBackend
from gradio_diffusion_preview.backends.hf_inference.catalogue import (
    CATALOGUE,
    EDITING,
    catalogue_entry,
)
from gradio_diffusion_preview.backends.hf_inference.settings import (
    TEXT_TO_IMAGE_PROVIDERS,
    HfModel,
    SettingsError,
)
from gradio_diffusion_preview.request import InvalidRequest, build_request
from gradio_diffusion_preview.testing import check_backend

SCHNELL = "black-forest-labs/FLUX.1-schnell"
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
SERVED = {
    SCHNELL: ("hf-inference", "fal-ai"),
    SDXL: ("hf-inference",),
    "acme/new-model": ("fal-ai",),
}
SMALL = {"width": 256, "height": 256}
SDXL_SMALL = {"width": 512, "height": 512}  # SDXL's own minimum
STOP_BOUND = 60.0
"""Only a bound on a hang: a stopped run is judged by order (it ended before the stalled
server answered, or before the next try), never by how long it took (3 to 50 ms here)."""


@pytest.fixture
def router(monkeypatch):
    yield from serve_router(monkeypatch, SERVED)


def backend_for(router: FakeRouter, **settings) -> HfInferenceBackend:
    """The backend pointed at the fake router, with the two served catalogue models."""
    settings.setdefault("models", [catalogue_entry(SCHNELL), catalogue_entry(SDXL)])
    settings.setdefault("max_wait", 5.0)
    return HfInferenceBackend(token=router.token, router_url=router.url, **settings)


def run(backend, control: RunControl | None = None, **fields) -> list:
    """Every event of one validated request."""
    request = validate_request(build_request(backend, {"prompt": "a fox", **fields}), backend)
    return list(backend.generate(request, control or RunControl()))


class Background:
    """``generate`` on a thread, as the server runs it; events are recorded as they come."""

    def __init__(self, backend, **fields) -> None:
        self.control = RunControl()
        self.events: list = []
        self.returned_at: float | None = None
        request = validate_request(build_request(backend, {"prompt": "a fox", **fields}), backend)
        generator = backend.generate(request, self.control)

        def pull() -> None:
            for event in generator:
                self.events.append(event)
            self.returned_at = time.monotonic()

        self.thread = threading.Thread(target=pull, daemon=True)
        self.thread.start()


def wait_until(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def call_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gdp-hf-inference-call")]


# --- the requests ----------------------------------------------------------------------------


def test_a_request_reaches_the_router_as_huggingface_hub_sends_it(router):
    backend = backend_for(router)
    events = run(
        backend,
        model=SDXL,
        negative_prompt="blurry",
        steps=12,
        guidance=6.5,
        seed=7,
        options={"parameters": {"scheduler": "EulerAncestralDiscreteScheduler"}},
        **SDXL_SMALL,
    )
    assert [type(e) for e in events] == [Started, Status, Finished]
    assert events[1].phase == "generating" and events[0].preview_size is None
    [post] = router.posts()
    assert post.path == f"/hf-inference/models/{SDXL}"
    assert post.headers["authorization"] == f"Bearer {router.token}"
    assert post.headers["accept"] == "image/png"
    assert post.body == {
        "inputs": "a fox",
        "parameters": {
            "negative_prompt": "blurry",
            "width": 512,
            "height": 512,
            "num_inference_steps": 12,
            "guidance_scale": 6.5,
            "seed": 7,
            "scheduler": "EulerAncestralDiscreteScheduler",
        },
    }
    finished = events[-1]
    assert finished.images[0].size == (512, 512) and finished.seeds == [7]
    assert not router.problems


def test_a_distilled_model_gets_its_own_defaults_and_no_guidance(router):
    backend = backend_for(router)
    run(backend, model=SCHNELL, seed=1, **SMALL)
    parameters = router.posts()[0].body["parameters"]
    assert parameters["num_inference_steps"] == 4
    assert "guidance_scale" not in parameters and "negative_prompt" not in parameters
    with pytest.raises(InvalidRequest, match="model 'black-forest-labs/FLUX.1-schnell'"):
        validate_request(
            build_request(backend, {"prompt": "x", "model": SCHNELL, "steps": 8}), backend
        )
    with pytest.raises(InvalidRequest, match="takes no guidance"):
        validate_request(
            build_request(backend, {"prompt": "x", "model": SCHNELL, "guidance": 3.0}), backend
        )


def test_a_batch_is_one_call_per_seed(router):
    events = run(backend_for(router), model=SCHNELL, seed=40, num_images=2, **SMALL)
    assert [p.body["parameters"]["seed"] for p in router.posts()] == [40, 41]
    finished = events[-1]
    assert finished.seeds == [40, 41] and len(finished.images) == 2
    assert finished.images[0].tobytes() != finished.images[1].tobytes()
    assert "image 2 of 2" in [e for e in events if isinstance(e, Status)][-1].message


def test_provider_parameters_are_checked_and_the_models_own_win(router):
    model = catalogue_entry(SDXL).model_copy(update={"parameters": {"scheduler": "DPMSolver"}})
    backend = backend_for(router, models=[model], allowed_parameters=["scheduler", "clip_skip"])
    parameters = {"scheduler": "Euler", "clip_skip": 2}
    run(backend, model=SDXL, options={"parameters": parameters}, **SDXL_SMALL)
    assert router.posts()[0].body["parameters"]["scheduler"] == "DPMSolver"
    assert router.posts()[0].body["parameters"]["clip_skip"] == 2
    for parameters, says in [
        ({"num_inference_steps": 500}, "standard field"),
        ({"num_images": 8}, "standard field"),
        ({"lora": "x"}, "not allowed on this server"),
        ({"scheduler": {"name": "x"}}, "must be a string"),
        (["scheduler"], "JSON object"),
    ]:
        [failed] = run(backend, model=SDXL, options={"parameters": parameters}, **SDXL_SMALL)
        assert isinstance(failed, Failed) and failed.reason == "invalid_request", parameters
        assert says in failed.message
    assert len(router.posts()) == 1, "a refused request never reaches the router"


# --- waiting: a loading model, a rate limit ---------------------------------------------------


def test_a_loading_model_is_waited_for_with_its_estimate(router):
    router.script(SCHNELL, loading(0.3), loading(0.2), image())
    events = run(backend_for(router), model=SCHNELL, **SMALL)
    statuses = [(e.phase, e.eta) for e in events if isinstance(e, Status)]
    assert statuses == [
        ("generating", None),
        ("loading", 0.3),
        ("generating", None),
        ("loading", 0.2),
        ("generating", None),
    ]
    loading_status = next(e for e in events if isinstance(e, Status) and e.phase == "loading")
    assert loading_status.message == "Loading the model, about 1 s…"
    assert isinstance(events[-1], Finished) and len(router.posts()) == 3


def test_a_rate_limit_within_the_bound_is_waited_out(router):
    router.script(SCHNELL, rate_limited(retry_after="0.2"), image())
    events = run(backend_for(router), model=SCHNELL, **SMALL)
    queued = [e for e in events if isinstance(e, Status) and e.phase == "queued"]
    assert len(queued) == 1 and queued[0].eta == 0.2 and "rate-limited" in queued[0].message
    assert isinstance(events[-1], Finished)


def test_waits_share_one_budget_and_the_last_fails_with_retry_after(router):
    router.script(SCHNELL, loading(0.6), loading(0.6), loading(0.6))
    events = run(backend_for(router, max_wait=1.0), model=SCHNELL, **SMALL)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.reason == "unavailable"
    assert failed.retry_after == 0.6 and "loading model" in failed.message
    assert len(router.posts()) == 2, "the third wait was not taken"


# --- Stop, the deadline, a dead router --------------------------------------------------------


def test_stop_mid_request_ends_the_run_before_the_server_answers_and_aborts_it(router):
    router.script(SCHNELL, stall(600))  # answers only when released
    run_ = Background(backend_for(router), model=SCHNELL, **SMALL)
    wait_until(lambda: router.posts())  # the request is in flight, the server silent
    run_.control.cancel()
    run_.thread.join(STOP_BOUND)
    assert run_.returned_at is not None, "the run ended while the server still stalled"
    assert [type(e) for e in run_.events] == [Started, Status], "a stopped run just stops"
    # The HTTP request itself was aborted (the server saw the client hang up) and the call's
    # thread ended: nothing is left waiting on the server.
    wait_until(lambda: router.disconnects, timeout=10.0)
    wait_until(lambda: not call_threads(), timeout=10.0)
    router.release()  # had an answer come now, nobody would read it
    time.sleep(0.2)
    assert [type(e) for e in run_.events] == [Started, Status]


def test_stop_while_waiting_for_a_loading_model_ends_before_the_next_try(router):
    router.script(SCHNELL, loading(40.0))  # the next try would come 40 s later
    run_ = Background(backend_for(router, max_wait=50.0), model=SCHNELL, **SMALL)
    wait_until(lambda: any(getattr(e, "phase", None) == "loading" for e in run_.events))
    run_.control.cancel()
    run_.thread.join(STOP_BOUND)
    assert run_.returned_at is not None and len(router.posts()) == 1, "ended before a retry"
    assert not any(isinstance(e, Failed) for e in run_.events), "a stopped run just stops"


def test_the_deadline_is_kept_on_our_own_clock(router):
    router.script(SCHNELL, stall(30))
    t0 = time.monotonic()
    events = run(backend_for(router, timeout=1.0), model=SCHNELL, **SMALL)
    took = time.monotonic() - t0
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.reason == "timeout"
    assert "within 1 s" in failed.message and 0.9 < took < 6.0  # not the 30 s stall
    wait_until(lambda: router.disconnects, timeout=10.0)


def test_a_router_that_refuses_connections_is_unavailable(router):
    backend = backend_for(router)
    router.close()  # its port now refuses connections
    failed = run(backend, model=SCHNELL, **SMALL)[-1]
    assert failed.reason == "unavailable" and "refused or dropped" in failed.message


# --- offline, the token ----------------------------------------------------------------------


def test_offline_mode_makes_the_backend_unavailable_without_a_request(router, monkeypatch):
    from huggingface_hub import constants

    backend = backend_for(router, models=None)  # the catalogue, listed live when online
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    availability = backend.availability()
    assert availability.state == "offline" and "HF_HUB_OFFLINE" in availability.message
    assert [m.id for m in backend.list_models()] == [m.id for m in CATALOGUE]
    assert "offline" in backend.describe()["inference"]["models"]
    [state] = list(stream(backend, prompt="a fox", model=SCHNELL))
    assert state.status == "error" and state.reason == "unavailable"
    assert "HF_HUB_OFFLINE" in state.message
    assert router.requests == [], "offline, nothing is sent, not even to loopback"


def test_without_a_token_the_backend_needs_one_and_says_how(monkeypatch, tmp_path):
    from huggingface_hub import constants

    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    backend = HfInferenceBackend(live_models=False)
    availability = backend.availability()
    assert availability.state == "needs_token"
    assert "HF_TOKEN" in availability.message and "hf auth login" in availability.message
    [state] = list(stream(backend, prompt="a fox", model=SCHNELL))
    assert state.reason == "unauthorized" and "huggingface.co/settings/tokens" in state.message
    (tmp_path / "no-token").write_text("hf_from_the_token_file")
    assert backend.availability().usable
    assert backend.describe()["endpoint"]["token"] == "set (from the token file (hf auth login))"


def test_the_token_comes_from_the_environment_and_is_never_described(router, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", router.token)
    backend = HfInferenceBackend(router_url=router.url, models=[catalogue_entry(SCHNELL)])
    assert isinstance(run(backend, model=SCHNELL, **SMALL)[-1], Finished)
    assert router.posts()[0].headers["authorization"] == f"Bearer {router.token}"
    described = json.dumps(backend.describe())
    assert router.token not in described + repr(backend)
    assert backend.describe()["endpoint"]["token"] == "set (from HF_TOKEN)"


def test_the_plugins_command_says_where_the_token_comes_from_but_never_prints_it():
    canary = "hf_canary" + "0123456789abcdef" * 2
    environ = {**os.environ, "HF_TOKEN": canary, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "gradio_diffusion_preview", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout + result.stderr
    listed = json.loads(result.stdout)
    assert '"set (from HF_TOKEN)"' in json.dumps(listed) and '"offline"' in json.dumps(listed)


# --- models ----------------------------------------------------------------------------------


def test_the_live_listing_comes_from_the_hub_is_cached_and_keeps_catalogue_names(router):
    backend = backend_for(router, models=None, hub_url=router.url)
    models = {m.id: m for m in backend.list_models()}
    assert list(models) == [SCHNELL, SDXL], "served by the router's hf-inference route only"
    schnell = models[SCHNELL]
    assert schnell.name == "FLUX.1 [schnell]" and schnell.defaults.steps_range == (1, 4)
    assert schnell.description.endswith("Served by hf-inference.")
    [listing] = [r for r in router.requests if r.path == "/api/models"]
    assert listing.query["pipeline_tag"] == ["text-to-image"]
    assert listing.query["inference_provider"] == ["hf-inference"]
    assert "inferenceProviderMapping" in listing.query["expand"]
    backend.forget_models()  # the registry's 60 s cache; the backend keeps its own
    backend.list_models()
    assert len([r for r in router.requests if r.path == "/api/models"]) == 1
    assert backend.describe()["inference"]["models"].startswith("live")


def test_the_live_listing_of_any_provider_adds_models_the_catalogue_lacks(router, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", router.token)
    backend = HfInferenceBackend(hub_url=router.url)  # Hugging Face's routing, any provider
    ids = [m.id for m in backend.list_models()]
    editing = [m.id for m in EDITING]  # served for image-to-image: not in this listing, kept
    assert ids == [SCHNELL, SDXL, *editing, "acme/new-model"]
    new = backend.model_info("acme/new-model")
    assert new.name == "new-model" and new.defaults is None
    assert new.description == "Served by fal-ai."


@pytest.mark.parametrize("reply", [stall(30), error(500, "the Hub is down")])
def test_a_slow_or_failing_hub_leaves_the_catalogue(router, reply):
    router.script_hub(*[reply] * 6)  # HfApi retries a 500 five times
    backend = backend_for(router, models=None, hub_url=router.url, list_timeout=0.3)
    t0 = time.monotonic()
    assert [m.id for m in backend.list_models()] == [m.id for m in CATALOGUE]
    assert time.monotonic() - t0 < 15  # not the 30 s the Hub stalls
    assert "live listing failed" in backend.describe()["inference"]["models"]
    # Asked again while the failure is fresh (list_models' own cache bypassed): the catalogue
    # again, at once, without asking the Hub (this once deadlocked on the listing's lock).
    again: list = []
    thread = threading.Thread(target=lambda: again.append(backend.models()), daemon=True)
    thread.start()
    thread.join(15)
    assert [m.id for m in again[0]] == [m.id for m in CATALOGUE]


def test_settings_from_the_environment_and_a_file(tmp_path, monkeypatch):
    file = tmp_path / "hf.toml"
    file.write_text(
        'provider = "fal-ai"\ntimeout = 90\n\n[[models]]\nid = "acme/house-style"\n'
        'name = "House style"\ndefaults = {default_steps = 8, steps_range = [1, 12], '
        "guidance = false}\n"
    )
    environ = {"DIFFUSION_PREVIEW_HF_CONFIG": str(file), "DIFFUSION_PREVIEW_HF_MAX_WAIT": "30"}
    backend = HfInferenceBackend.from_environment(environ)
    assert backend.config_error is None
    assert (backend.settings.provider, backend.settings.timeout) == ("fal-ai", 90)
    assert backend.settings.max_wait == 30 and not backend.settings.lists_live
    [model] = backend.list_models()
    assert (model.id, model.name, model.defaults.default_steps) == (
        "acme/house-style",
        "House style",
        8,
    )
    ids = HfInferenceBackend.from_environment(
        {"DIFFUSION_PREVIEW_HF_MODELS": f"{SCHNELL}, acme/other"}
    ).list_models()
    assert [m.id for m in ids] == [SCHNELL, "acme/other"]
    assert ids[0].defaults == catalogue_entry(SCHNELL).defaults


@pytest.mark.parametrize(
    "environ, says",
    [
        ({"DIFFUSION_PREVIEW_HF_PROVIDER": "no-such"}, "unknown provider 'no-such'"),
        ({"DIFFUSION_PREVIEW_HF_MODELS": "not a repo id"}, "is not a repo id"),
        ({"DIFFUSION_PREVIEW_HF_TIMEOUT": "-1"}, "timeout"),
        (
            {
                "DIFFUSION_PREVIEW_HF_ROUTER_URL": "http://127.0.0.1:9",
                "DIFFUSION_PREVIEW_HF_PROVIDER": "fal-ai",
            },
            "router_url sends every request by the hf-inference route",
        ),
        ({"DIFFUSION_PREVIEW_HF_CONFIG": "/no/such/file.toml"}, "cannot be read"),
    ],
)
def test_a_wrong_configuration_leaves_the_backend_listed_as_not_configured(environ, says):
    backend = HfInferenceBackend.from_environment(environ)
    availability = backend.availability()
    assert availability.state == "not_configured"
    assert says in availability.message and "Fix:" in availability.message
    with pytest.raises(SettingsError, match="unknown provider"):
        HfInferenceBackend(provider="no-such")


def test_the_provider_list_is_the_installed_huggingface_hubs():
    from huggingface_hub.inference._providers import PROVIDERS

    served = {name for name, tasks in PROVIDERS.items() if "text-to-image" in tasks}
    assert set(TEXT_TO_IMAGE_PROVIDERS) == served


def test_the_catalogue_is_well_formed():
    for model in CATALOGUE:
        caps = HfInferenceBackend.capabilities.for_model(model.defaults)  # validates itself
        assert model.name and model.description
        assert caps.default_size[0] % caps.size_multiple == 0
    assert HfModel(id=SCHNELL).info().name == "FLUX.1-schnell"


def test_registering_the_backend_imports_no_http_client():
    code = (
        "import sys, gradio_diffusion_preview as g\n"
        "backend = g.get_backend('hf-inference')\n"
        "backend.availability()\n"
        "assert backend.display_name == 'Hugging Face Inference'\n"
        "heavy = [m for m in ('httpx2', 'huggingface_hub.inference._client', 'gradio') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the conformance kit ---------------------------------------------------------------------


def test_the_conformance_kit_passes(router, monkeypatch):
    """The registry's own hf-inference backend, configured by the environment as a server
    would configure it (tests/test_conformance.py names this test for the built-in)."""
    configure_environment(monkeypatch, router, f"{SCHNELL},acme/retired")
    backend = Registry(load_entry_points=False).get("hf-inference")
    report = check_backend(
        backend,
        model=SCHNELL,
        steps=4,
        failing_request={"model": "acme/retired"},  # offered, but the router answers 404
        **SMALL,
    )
    assert not report.failed
    assert report.skipped == {
        "cancel": "capabilities.step_events is False: check_cancel_at_start checks its cancel",
        "finish_early": "capabilities.finish_early is False",
        # FLUX.1 [schnell] is text-to-image only (test_hf_inference_edit.py runs the checks)
        "image_to_image": "capabilities.image_to_image is False",
        "image_to_image_preview": "capabilities.image_to_image is False",
    }, report
