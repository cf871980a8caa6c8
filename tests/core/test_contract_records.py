"""The records a plugin constructs read as the docs show them: ``Availability`` and
``ModelInfo`` take their fields by position as the events do (or by keyword), a wrong call is
a ``TypeError`` naming the class, and the types the docs' examples import are public names."""

from __future__ import annotations

import typing

import pytest

import gradio_diffusion_preview as gdp
from gradio_diffusion_preview import Availability, ModelDefaults, ModelInfo


def test_availability_takes_its_state_and_message_by_position_as_the_docs_show():
    positional = Availability("not_configured", "Set EXAMPLE_URL.")
    assert positional == Availability(state="not_configured", message="Set EXAMPLE_URL.")
    assert not positional.usable and Availability().usable
    assert Availability("offline").message == ""


def test_model_info_takes_its_fields_by_position_as_well():
    defaults = ModelDefaults(steps_range=(1, 4), default_steps=2)
    info = ModelInfo("sketch-turbo", "Sketch turbo", "Few steps.", defaults)
    assert info == ModelInfo(
        id="sketch-turbo", name="Sketch turbo", description="Few steps.", defaults=defaults
    )
    assert ModelInfo("sd15").id == "sd15"
    # The ways the project builds them itself keep working.
    assert ModelInfo.model_validate(info.model_dump()) == info
    assert info.model_copy(update={"name": "x"}).name == "x"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Availability("usable", "", "extra"), "Availability() takes at most 2"),
        (lambda: ModelInfo("a", "b", "c", None, "e"), "ModelInfo() takes at most 4"),
        (lambda: ModelInfo("a", id="b"), "ModelInfo() got 'id' both by position and by name"),
    ],
)
def test_a_wrong_call_is_a_type_error_naming_the_class_and_its_fields(make, says):
    with pytest.raises(TypeError, match=r"\(") as error:
        make()
    assert says in str(error.value)


def test_a_bad_state_is_still_refused_by_validation():
    with pytest.raises(ValueError, match="state"):
        Availability("asleep", "no such state")


def test_the_types_the_docs_examples_import_are_public():
    from gradio_diffusion_preview import AvailabilityState, FailureReason, Phase

    assert "rate_limited" in typing.get_args(FailureReason)
    assert typing.get_args(Phase) == ("queued", "loading", "generating", "fetching")
    assert "needs_token" in typing.get_args(AvailabilityState)
    assert {"FailureReason", "Phase", "AvailabilityState"} <= set(gdp.__all__)


def test_an_availability_names_the_reason_a_refused_run_gets():
    from gradio_diffusion_preview import Availability

    assert Availability("needs_token", "Set HF_TOKEN.").reason == "unauthorized"
    for state in ("offline", "not_configured", "unavailable"):
        assert Availability(state, "why").reason == "unavailable"
