"""Typed options (issue #24 item 9): a backend's Options class is checked once, centrally, and
the choices, labels and schema UIs and APIs show derive from it; a dict of names still works."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
from pydantic import Field

from gradio_diffusion_preview import (
    Backend,
    Capabilities,
    GenerationRequest,
    InvalidRequest,
    ModelDefaults,
    ModelInfo,
    Options,
    validate_request,
)


class PaintOptions(Options):
    aliases: ClassVar[dict[str, dict[str, str]]] = {"brush": {"round_soft": "Round soft"}}

    brush: Literal["Round soft", "Flat hard"] | None = Field(
        None, description="the brush", json_schema_extra={"labels": {"Flat hard": "Flat (hard)"}}
    )
    wetness: float = Field(0.5, ge=0, le=1, description="how wet the paint is")
    note: str | None = Field(None, description="a note")


class Paint(Backend):
    id, display_name, location = "paint", "Paint", "local"

    def __init__(self, capabilities: Capabilities) -> None:
        self._capabilities = capabilities
        self.seen: list[dict] = []

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def models(self):
        return [ModelInfo("canvas", defaults=ModelDefaults(default_steps=4))]

    def generate(self, request, control):
        self.seen.append(request.options)
        yield from ()


def check(options: dict, caps: Capabilities | None = None) -> dict:
    backend = Paint(caps or Capabilities(options=PaintOptions))
    return validate_request(GenerationRequest(prompt="a boat", options=options), backend).options


def test_choices_labels_descriptions_and_schema_derive_from_the_class():
    caps = Capabilities(options=PaintOptions)
    assert caps.options_model is PaintOptions
    assert caps.options == {
        "brush": "the brush",
        "wetness": "how wet the paint is",
        "note": "a note",
    }
    assert caps.option_choices == {"brush": ("Round soft", "Flat hard")}
    assert caps.option_labels == {"brush": {"Flat hard": "Flat (hard)"}}
    schema = Paint(caps).describe()["options_schema"]
    assert schema["properties"]["wetness"] == {
        "default": 0.5, "description": "how wet the paint is", "maximum": 1, "minimum": 0,
        "title": "Wetness", "type": "number",
    }  # fmt: skip
    assert "options_model" not in Paint(caps).describe()["capabilities"]


def test_only_the_options_given_arrive_with_aliases_and_case_resolved():
    assert check({}) == {}
    assert check({"brush": "round_soft"}) == {"brush": "Round soft"}
    assert check({"brush": "FLAT HARD", "wetness": 1}) == {"brush": "Flat hard", "wetness": 1.0}
    assert check({"brush": ""}) == {}  # empty text: unset, the backend's own


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"brush": "sponge"}, ["options.brush='sponge'", "use one of: Round soft, Flat hard"]),
        ({"wetness": 3}, ["options.wetness=3", "use a number from 0 to 1"]),
        ({"wetness": "damp"}, ["options.wetness='damp'", "from 0 to 1"]),
        ({"colour": "red"}, ["options.colour='red'", "options are: brush, wetness, note"]),
        ({"note": 5}, ["options.note=5", "give note a note"]),
    ],
)
def test_a_bad_option_is_refused_naming_the_option_the_value_and_what_is_allowed(options, words):
    with pytest.raises(InvalidRequest) as refused:
        check(options)
    assert all(word in str(refused.value) for word in words), str(refused.value)
    assert refused.value.field.startswith("options.")


def test_narrowed_choices_keep_aliases_and_survive_model_defaults():
    narrowed = PaintOptions.narrowed(brush=("Round soft",))
    caps = Capabilities(options=PaintOptions).with_options(narrowed)
    assert caps.option_choices == {"brush": ("Round soft",)}
    assert check({"brush": "round_soft"}, caps) == {"brush": "Round soft"}
    with pytest.raises(InvalidRequest, match="use one of: Round soft\\."):
        check({"brush": "Flat hard"}, caps)
    assert caps.for_model(ModelDefaults(default_steps=4)).options_model is narrowed
    assert PaintOptions.narrowed(brush=("Round soft", "Flat hard")) is PaintOptions


def test_a_subset_keeps_only_the_options_named():
    caps = Capabilities(options=PaintOptions.subset("brush"))
    assert list(caps.options) == ["brush"] and caps.option_choices["brush"]
    assert check({"brush": "round_soft"}, caps) == {"brush": "Round soft"}
    with pytest.raises(InvalidRequest, match="options.wetness"):
        check({"wetness": 0.2}, caps)


def test_the_old_dict_of_names_still_works_values_reach_generate_unchecked():
    caps = Capabilities(options={"brush": "any brush"}, option_choices={"brush": ("round",)})
    assert caps.options_model is None and caps.options_schema() is None
    assert check({"brush": "anything at all"}, caps) == {"brush": "anything at all"}
    with pytest.raises(InvalidRequest, match="not an option this backend understands"):
        check({"colour": "red"}, caps)


def test_a_policy_takes_an_alias_for_its_choice():
    from gradio_diffusion_preview.policy import CatalogueEntry, Policy

    backend = Paint(Capabilities(options=PaintOptions))
    entry = CatalogueEntry(
        id="canvas", label="Canvas", backend="paint", model="canvas", visitor_options=("brush",)
    )
    policy = Policy(catalogue=[entry])
    fields = {"prompt": "a boat", "options": {"brush": "round_soft"}}
    request = policy.admit(entry, backend, fields)
    assert validate_request(request, backend).options == {"brush": "Round soft"}
    with pytest.raises(InvalidRequest, match="not one of this app's choices for brush"):
        policy.admit(entry, backend, {"prompt": "a boat", "options": {"brush": "sponge"}})
