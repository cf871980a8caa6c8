"""Central request validation: every bad request is refused before any work starts, with a
message naming the backend, the field, the value, the rule and a fix."""

from __future__ import annotations

import math

import pytest

from gradio_diffusion_preview import (
    Availability,
    Backend,
    BackendUnavailable,
    Capabilities,
    GenerationRequest,
    InvalidRequest,
    ModelDefaults,
    ModelInfo,
    stream,
    validate_request,
)
from gradio_diffusion_preview.request import MAX_PROMPT_CHARS, MAX_SEED, build_request


class Full(Backend):
    """Takes everything: negative prompts, guidance, seeds; two models, one option."""

    id = "full"
    display_name = "Full"
    location = "local"
    capabilities = Capabilities(
        size_multiple=8,
        min_size=64,
        max_size=1024,
        steps_range=(1, 50),
        max_batch=2,
        guidance_range=(1.0, 20.0),
        options={"sampler": "euler or ddim"},
    )

    def models(self):
        return [ModelInfo(id="base"), ModelInfo(id="turbo")]

    def generate(self, request, control):
        yield from ()


class Plain(Full):
    """Takes no negative prompt, no guidance, no seed and no options."""

    id = "plain"
    capabilities = Capabilities(
        negative_prompt=False,
        guidance=False,
        seed=False,
        size_multiple=64,
        min_size=128,
        max_size=512,
        default_size=(256, 256),
    )


class Offline(Full):
    id = "offline"

    def models(self):
        raise ConnectionError("api.example.com unreachable")


class Unlisted(Full):
    id = "unlisted"
    capabilities = Capabilities(any_model=True)

    def models(self):
        return []


BACKENDS = {b.id: b for b in (Full(), Plain(), Offline(), Unlisted())}

# (backend, request fields, field, value as shown, part of the rule, part of the fix)
BAD_REQUESTS = [
    ("full", {"prompt": ""}, "prompt", "''", "the prompt is empty", "describe the image"),
    (
        "full",
        {"prompt": " \n\t"},
        "prompt",
        "' \\n\\t'",
        "the prompt is empty",
        "describe the image",
    ),
    (
        "full",
        {"prompt": "x" * (MAX_PROMPT_CHARS + 1)},
        "prompt",
        f"'<{MAX_PROMPT_CHARS + 1} characters>'",
        f"at most {MAX_PROMPT_CHARS} characters",
        "shorten the prompt",
    ),
    (
        "plain",
        {"negative_prompt": "blurry"},
        "negative_prompt",
        "'blurry'",
        "this backend has no negative prompt",
        "leave negative_prompt empty",
    ),
    (
        "full",
        {"model": "huge"},
        "model",
        "'huge'",
        "not one of the models this backend offers",
        "choose one of: base, turbo",
    ),
    ("unlisted", {}, "model", "None", "this backend has no default model", "name a model"),
    (
        "full",
        {"steps": 0},
        "steps",
        "0",
        "steps must be from 1 to 50",
        "use a number of steps from 1 to 50",
    ),
    (
        "full",
        {"steps": 51},
        "steps",
        "51",
        "steps must be from 1 to 50",
        "use a number of steps from 1 to 50",
    ),
    (
        "full",
        {"steps": "many"},
        "steps",
        "'many'",
        "valid integer",
        "give steps a value of the right type",
    ),
    (
        "plain",
        {"guidance": 7.5},
        "guidance",
        "7.5",
        "this backend takes no guidance scale",
        "leave guidance unset",
    ),
    (
        "full",
        {"guidance": 0.5},
        "guidance",
        "0.5",
        "guidance must be from 1.0 to 20.0",
        "use a guidance scale from 1.0 to 20.0",
    ),
    (
        "full",
        {"guidance": math.nan},
        "guidance",
        "nan",
        "guidance must be from 1.0 to 20.0",
        "use a guidance scale from 1.0 to 20.0",
    ),
    (
        "full",
        {"seed": -1},
        "seed",
        "-1",
        f"seeds are whole numbers from 0 to {MAX_SEED}",
        "or none for a random one",
    ),
    (
        "full",
        {"seed": MAX_SEED + 1},
        "seed",
        str(MAX_SEED + 1),
        f"seeds are whole numbers from 0 to {MAX_SEED}",
        f"use a seed from 0 to {MAX_SEED}",
    ),
    ("plain", {"seed": 42}, "seed", "42", "this backend cannot be seeded", "leave seed unset"),
    ("full", {"width": 100}, "width", "100", "width must be a multiple of 8", "use 96"),
    ("plain", {"height": 300}, "height", "300", "height must be a multiple of 64", "use 320"),
    (
        "full",
        {"height": 32},
        "height",
        "32",
        "height must be from 64 to 1024 pixels",
        "use a height from 64 to 1024",
    ),
    (
        "full",
        {"width": 4096},
        "width",
        "4096",
        "width must be from 64 to 1024 pixels",
        "use a width from 64 to 1024",
    ),
    (
        "full",
        {"width": "wide"},
        "width",
        "'wide'",
        "valid integer",
        "give width a value of the right type",
    ),
    (
        "full",
        {"num_images": 0},
        "num_images",
        "0",
        "a batch holds 1 to 2 images",
        "ask for 1 to 2 images",
    ),
    (
        "full",
        {"num_images": 3},
        "num_images",
        "3",
        "a batch holds 1 to 2 images",
        "ask for 1 to 2 images",
    ),
    (
        "full",
        {"options": {"sampler": "euler", "cfg_rescale": 0.7}},
        "options.cfg_rescale",
        "0.7",
        "not an option this backend understands",
        "this backend's options are: sampler",
    ),
    (
        "plain",
        {"options": {"sampler": "euler"}},
        "options.sampler",
        "'euler'",
        "not an option this backend understands",
        "this backend's options are: none",
    ),
    (
        "full",
        {"options": "sampler=euler"},
        "options",
        "'sampler=euler'",
        "valid dictionary",
        "give options a value of the right type",
    ),
    (
        "full",
        {"cfg": 7},
        "cfg",
        "7",
        "unknown request field",
        "use only these fields: prompt, negative_prompt, model, steps",
    ),
]


@pytest.mark.parametrize(
    ("backend_id", "fields", "field", "shown", "rule", "fix"),
    BAD_REQUESTS,
    ids=[f"{b}-{f}-{i}" for i, (b, _, f, *_) in enumerate(BAD_REQUESTS)],
)
def test_bad_request_is_refused_with_field_value_rule_backend_and_fix(
    backend_id, fields, field, shown, rule, fix
):
    backend = BACKENDS[backend_id]
    with pytest.raises(InvalidRequest) as info:
        validate_request(build_request(backend, {"prompt": "a red fox", **fields}), backend)
    error = info.value
    assert (error.backend, error.field) == (backend_id, field)
    assert rule in error.rule and fix in error.fix
    message = str(error)
    assert message.startswith(
        f"Invalid request for backend '{backend_id}': {field}={shown} is not allowed ("
    )
    assert rule in message and f"Fix: {error.fix}" in message


def test_there_are_at_least_fifteen_distinct_bad_requests():
    assert len({(b, f, r) for b, _, f, _, r, _ in BAD_REQUESTS}) >= 15


def test_a_valid_request_comes_back_resolved_with_the_backends_defaults():
    full, plain = BACKENDS["full"], BACKENDS["plain"]
    resolved = validate_request(GenerationRequest(prompt="a red fox"), full)
    assert resolved.model == "base"  # the first listed model
    assert (resolved.width, resolved.height) == (512, 512)
    assert resolved.steps == 20 and resolved.guidance == 7.5
    assert 0 <= resolved.seed <= MAX_SEED
    unseeded = validate_request(GenerationRequest(prompt="a red fox"), plain)
    assert unseeded.seed is None and unseeded.guidance is None
    assert (unseeded.width, unseeded.height) == (256, 256)
    kept = validate_request(
        GenerationRequest(prompt="a fox", model="turbo", seed=0, steps=1, width=64, height=1024),
        full,
    )
    assert (kept.model, kept.seed, kept.steps, kept.width, kept.height) == ("turbo", 0, 1, 64, 1024)


def test_stream_turns_an_invalid_request_into_an_error_state_not_an_exception():
    states = list(stream(BACKENDS["full"], prompt="a red fox", steps=500))
    [state] = states
    assert state.status == "error" and state.backend == "full"
    assert state.message == (
        "Invalid request for backend 'full': steps=500 is not allowed (steps must be from 1 to "
        "50). Fix: use a number of steps from 1 to 50."
    )
    assert state.reason == "invalid_request"


# --- per-model defaults and limits ------------------------------------------------------------


class WithTurbo(Full):
    """A backend whose 'turbo' model wants 1 to 4 steps, no guidance and no negative prompt."""

    id = "with-turbo"

    def models(self):
        return [
            ModelInfo(id="base"),
            ModelInfo(
                id="turbo",
                defaults=ModelDefaults(
                    default_steps=1,
                    steps_range=(1, 4),
                    guidance=False,
                    negative_prompt=False,
                    default_size=(256, 256),
                ),
            ),
        ]


def test_a_model_brings_its_own_defaults():
    backend = WithTurbo()
    base = validate_request(GenerationRequest(prompt="a fox"), backend)
    turbo = validate_request(GenerationRequest(prompt="a fox", model="turbo"), backend)
    assert (base.steps, base.guidance, base.width) == (20, 7.5, 512)
    assert (turbo.steps, turbo.guidance, turbo.width, turbo.height) == (1, None, 256, 256)
    assert backend.capabilities_for("turbo").steps_range == (1, 4)
    assert backend.capabilities_for("base") == backend.capabilities


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"steps": 8}, "steps must be from 1 to 4 for model 'turbo'"),
        ({"guidance": 3.0}, "model 'turbo' takes no guidance scale"),
        ({"negative_prompt": "blur"}, "model 'turbo' takes no negative prompt"),
    ],
)
def test_a_models_own_limits_are_named_as_the_models(fields, says):
    with pytest.raises(InvalidRequest) as error:
        validate_request(GenerationRequest(prompt="a fox", model="turbo", **fields), WithTurbo())
    assert says in str(error.value)
    validate_request(GenerationRequest(prompt="a fox", model="base", **fields), WithTurbo())


def test_model_defaults_that_break_their_own_limits_are_refused_when_applied():
    with pytest.raises(ValueError, match="default_steps 8 is outside"):
        Capabilities().for_model(ModelDefaults(default_steps=8, steps_range=(1, 4)))


# --- a backend that cannot run now ----------------------------------------------------------


def test_a_failed_model_listing_is_unavailable_not_an_invalid_request():
    with pytest.raises(BackendUnavailable) as error:
        validate_request(GenerationRequest(prompt="a fox"), Offline())
    assert error.value.reason == "unavailable"
    assert "Backend 'offline' could not list its models: ConnectionError: api.example.com" in (
        str(error.value)
    )
    assert "model=None" not in str(error.value)
    [state] = stream(Offline(), prompt="a fox", model="base")
    assert state.status == "error" and state.reason == "unavailable"


def test_availability_is_checked_before_the_run_with_the_reason():
    class NeedsToken(Full):
        id = "needs-token"

        def availability(self):
            return Availability(state="needs_token", message="Set HF_TOKEN.")

    [state] = stream(NeedsToken(), prompt="a fox")
    assert (state.status, state.reason, state.message) == ("error", "unauthorized", "Set HF_TOKEN.")


def test_model_listings_are_reused_for_a_while_and_failures_remembered_briefly(monkeypatch):
    calls = []

    class Counting(Full):
        id = "counting-list"

        def models(self):
            calls.append(1)
            if len(calls) == 2:
                raise ConnectionError("flaky")
            return [ModelInfo(id="base")]

    backend = Counting()
    for _ in range(3):
        validate_request(GenerationRequest(prompt="a fox"), backend)
    assert len(calls) == 1
    backend.forget_models()
    with pytest.raises(BackendUnavailable, match="flaky"):
        validate_request(GenerationRequest(prompt="a fox"), backend)
    with pytest.raises(BackendUnavailable, match="flaky"):  # remembered, not asked again
        validate_request(GenerationRequest(prompt="a fox"), backend)
    assert len(calls) == 2
    assert backend.list_models(max_age=0)[0].id == "base" and len(calls) == 3


def test_image_seeds_number_a_batch_as_every_backend_does():
    from gradio_diffusion_preview.request import GenerationRequest

    batch = GenerationRequest(prompt="p", seed=2**32 - 2, num_images=3)
    assert batch.image_seeds() == [2**32 - 2, 2**32 - 1, 0]  # wraps within the seed range
    assert batch.image_seeds(one_per_image=False) == [2**32 - 2] * 3
    assert GenerationRequest(prompt="p", num_images=2).image_seeds() is None  # no seed claimed
