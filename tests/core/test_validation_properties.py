"""Request validation as properties (hypothesis) and malformed input through the Python API: any
request a visitor can send ends in exactly one final state, never an exception; a refusal names
the field and the rule, carries a reason and no server path; an accepted run stays in the limits."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import GenerationRequest, InvalidRequest, stream, validate_request
from gradio_diffusion_preview.events import FAILURE_REASONS
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy

FIELDS = ("prompt", "negative_prompt", "model", "steps", "guidance", "seed", "width", "height")
IMAGE_FIELDS = ("init_image", "mask_image", "strength")
LIMITS = Limits(max_steps=8, max_side=256, max_images=2, max_prompt_chars=50)


def make_policy() -> Policy:
    entry = CatalogueEntry(id="flat", backend="counting", model="/srv/secret/flat")
    return Policy(catalogue=[entry], limits=LIMITS, runs_per_session=1)


class ListedCounting(CountingBackend):
    def models(self):
        from gradio_diffusion_preview import ModelInfo

        return [ModelInfo(id="/srv/secret/flat")]


REGISTRY = registry_with(ListedCounting())

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
plausible = {
    "prompt": st.one_of(st.text(min_size=0, max_size=70), anything),
    "negative_prompt": st.one_of(st.text(max_size=70), anything),
    "model": st.one_of(st.sampled_from(["flat", "/etc", "../flat", "", None]), anything),
    "steps": st.one_of(st.integers(-3, 12), anything),
    "guidance": st.one_of(st.floats(-5, 40), anything),
    "seed": st.one_of(st.integers(-10, 2**33), anything),
    "width": st.one_of(st.sampled_from([0, 63, 64, 72, 100, 256, 264, 4096]), anything),
    "height": st.one_of(st.sampled_from([64, 128, 257, 512]), anything),
    "num_images": st.one_of(st.integers(-1, 4), anything),
    "options": st.one_of(
        st.dictionaries(st.sampled_from(["scheduler", "device", "dtype", "x"]), anything),
        anything,
    ),
    # the counting backend takes no input image: every one is refused, whatever it holds
    "init_image": st.one_of(
        st.sampled_from(["/etc/passwd", "data:image/png;base64,AAAA", "", None]), anything
    ),
    "mask_image": st.one_of(st.sampled_from(["~/.ssh/id_rsa", None]), anything),
    "strength": st.one_of(st.floats(-1, 2), anything),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=plausible))
def test_any_visitor_request_ends_in_one_final_state_within_the_limits(fields):
    policy = make_policy()
    states = list(stream("counting", registry=REGISTRY, policy=policy, **fields))
    final = states[-1]
    assert all(s.status in ("queued", "running") for s in states[:-1])
    assert final.status in ("done", "error")
    assert policy.queue.active() == (0, 0)  # the slot is free again
    text = " ".join(filter(None, (s.message for s in states)))
    assert "/srv" not in text and all(s.model in (None, "flat") for s in states)
    if final.status == "error":
        assert final.reason in FAILURE_REASONS
        assert final.message and "Fix:" in final.message
        named = [*FIELDS, *IMAGE_FIELDS, "num_images", "options"]
        assert any(f"{name}" in final.message for name in named)
    else:
        assert final.total_steps <= LIMITS.max_steps and len(final.images) <= LIMITS.max_images
        assert max(final.width, final.height) <= LIMITS.max_side


@settings(max_examples=120, deadline=None)
@given(
    steps=st.one_of(st.none(), st.integers(-5, 600)),
    guidance=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    seed=st.one_of(st.none(), st.integers(-(2**33), 2**33)),
    width=st.one_of(st.none(), st.integers(-10, 3000)),
    height=st.one_of(st.none(), st.integers(-10, 3000)),
    num_images=st.integers(-2, 8),
)
def test_validation_accepts_only_requests_within_the_capabilities(**fields):
    backend = CountingBackend()
    caps = backend.capabilities
    try:
        resolved = validate_request(GenerationRequest(prompt="a", **fields), backend)
    except InvalidRequest as error:
        assert error.field in fields and f"{error.field}=" in str(error)
        assert "Fix:" in str(error)
        return
    assert caps.steps_range[0] <= resolved.steps <= caps.steps_range[1]
    assert caps.guidance_range[0] <= resolved.guidance <= caps.guidance_range[1]
    assert 0 <= resolved.seed < 2**32
    for side in (resolved.width, resolved.height):
        assert caps.min_size <= side <= caps.max_size and side % caps.size_multiple == 0
    assert 1 <= resolved.num_images <= caps.max_batch


@settings(max_examples=80, deadline=None)
@given(
    side=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    mask_side=st.one_of(st.none(), st.tuples(st.integers(1, 300), st.integers(1, 300))),
    strength=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    model=st.sampled_from(["img2img", "inpaint", "text", "kontext"]),
)
def test_input_images_are_accepted_only_as_the_model_takes_them(side, mask_side, strength, model):
    import PIL.Image
    from test_input_image import Editor

    backend = Editor()
    caps = backend.capabilities_for(model)
    image = PIL.Image.new("RGB", side)
    mask = None if mask_side is None else PIL.Image.new("L", mask_side)
    fields = dict(init_image=image, mask_image=mask, strength=strength, model=model)
    try:
        resolved = validate_request(GenerationRequest(prompt="a", **fields), backend)
    except InvalidRequest as error:
        assert error.field in IMAGE_FIELDS and "Fix:" in str(error)
        return
    assert caps.image_to_image or caps.instruction_editing
    assert mask is None or (caps.inpainting and mask.size == image.size)
    if caps.image_to_image:
        assert 0.0 <= resolved.strength <= 1.0
    else:
        assert resolved.strength is None
    for side_made in (resolved.width, resolved.height):
        assert caps.min_size <= side_made <= caps.max_size
        assert side_made % caps.size_multiple == 0


PYTHON_API_BAD = [
    ("steps", "abc"),
    ("steps", 2.5),
    ("steps", math.nan),
    ("steps", 9),
    ("steps", True),
    ("seed", -5),
    ("seed", 1.5),
    ("seed", math.nan),
    ("seed", math.inf),
    ("seed", 2**32),
    ("width", 300),
    ("width", 100),
    ("width", math.nan),
    ("height", -8),
    ("num_images", 2.7),
    ("num_images", 3),
    ("num_images", 0),
    ("guidance", math.nan),
    ("guidance", -math.inf),
    ("guidance", "lots"),
    ("prompt", ""),
    ("prompt", "x" * 51),
    ("prompt", None),
    ("negative_prompt", "x" * 1001),
    ("model", "/srv/secret/flat"),  # the real model's path is not a choice for a visitor
    ("model", "/etc/passwd"),
    ("options", {"device": "cuda"}),
    ("options", "scheduler=euler"),
    ("options", ["scheduler"]),
    ("colour", "red"),
    ("init_image", "/srv/secret/flat/model_index.json"),
    ("init_image", "data:image/png;base64,AAAA"),
    ("mask_image", "/etc/passwd"),
    ("strength", 0.5),
    ("strength", "lots"),
]


@pytest.mark.parametrize("field, value", PYTHON_API_BAD)
def test_bad_input_through_the_python_api_names_the_field(field, value):
    policy = make_policy()
    final = list(
        stream("counting", registry=REGISTRY, policy=policy, **{"prompt": "a", field: value})
    )[-1]
    assert final.status == "error" and final.reason == "invalid_request", final
    assert field in final.message and "Fix:" in final.message, final.message
    assert "/srv" not in final.message
