"""Typed request options: a backend's ``Options`` class, validated once, centrally.

A backend declares the options it understands as a pydantic model (as simonw/llm does per
model): each field a ``description``, a default (``None``: the backend's own), ``Literal[...]``
for a fixed set of choices and constraints (``ge``, ``le``) for ranges. The request validation
checks a request's options through it once, before the run, with an error naming the option, the
value and what is allowed, and hands ``generate`` the checked values (aliases turned into the
canonical names). ``Capabilities.options`` (descriptions), ``option_choices`` and
``option_labels`` are derived from it, and so is the JSON schema an API shows.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model


class Options(BaseModel):
    """Base class of a backend's typed request options. Subclass it with one field per option::

        class FractalOptions(Options):
            palette: Literal["fire", "ocean"] | None = Field(None, description="colours")
            step_delay: float = Field(0, ge=0, le=5, description="seconds per step")

    and declare it as ``Capabilities(options=FractalOptions)``. An option's choice labels for
    people (``latent_rgb`` -> "Latent RGB") go in ``Field(json_schema_extra={"labels": {...}})``;
    old names kept for API users go in ``aliases`` (option -> old value -> value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: ClassVar[dict[str, dict[str, str]]] = {}
    """Old or alternative values an option still accepts, by option: ``{"scheduler":
    {"euler_a": "Euler a"}}``. Matched without regard to case; a value that differs from a
    choice only in case is accepted too."""

    def __init__(self, **values: Any) -> None:
        super().__init__(**{name: self._canonical(name, v) for name, v in values.items()})

    @classmethod
    def _canonical(cls, name: str, value: Any) -> Any:
        """``value`` with an alias or a miscased choice turned into the choice; "" is unset."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        folded = text.casefold()
        for old, new in cls.aliases.get(name, {}).items():
            if old.casefold() == folded:
                return new
        for choice in cls.choices().get(name, ()):
            if choice.casefold() == folded:
                return choice
        return text

    @classmethod
    def canonical(cls, name: str, value: Any) -> Any:
        """The value ``value`` stands for in option ``name`` (an alias's choice), unchecked."""
        return cls._canonical(name, value)

    @classmethod
    def descriptions(cls) -> dict[str, str]:
        """Option name -> its description, for ``Capabilities.options``."""
        return {name: field.description or "" for name, field in cls.model_fields.items()}

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """Option name -> its choices, for each option typed as a ``Literal``."""
        found = {}
        for name, field in cls.model_fields.items():
            values = _literal_values(field.annotation)
            if values:
                found[name] = values
        return found

    @classmethod
    def labels(cls) -> dict[str, dict[str, str]]:
        """Option name -> choice -> its label for people, where the field gives labels."""
        found = {}
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra
            labels = extra.get("labels") if isinstance(extra, dict) else None
            if isinstance(labels, dict):
                found[name] = {str(k): str(v) for k, v in labels.items()}
        return found

    @classmethod
    def narrowed(cls, **choices: tuple[str, ...]) -> type[Options]:
        """This class with some options' choices narrowed (a model that runs only some
        samplers); the aliases, validators and descriptions carry over."""
        if all(tuple(values) == cls.choices().get(name) for name, values in choices.items()):
            return cls
        fields: dict[str, Any] = {}
        for name, values in choices.items():
            field = copy.copy(cls.model_fields[name])
            optional = _is_optional(field.annotation)
            annotation: Any = Literal[tuple(values)]  # type: ignore[valid-type]
            fields[name] = (annotation | None if optional else annotation, field)
        return create_model(cls.__name__, __base__=cls, **fields)

    @classmethod
    def subset(cls, *names: str) -> type[Options]:
        """The options named, alone (a configured workflow that exposes only some of them)."""
        fields = {
            name: (cls.model_fields[name].annotation, copy.copy(cls.model_fields[name]))
            for name in names
        }
        kept = {name: alias for name, alias in cls.aliases.items() if name in names}
        subset = create_model(cls.__name__, __base__=Options, **fields)
        subset.aliases = kept
        return subset


def _literal_values(annotation: Any) -> tuple[str, ...]:
    """The values of a ``Literal[...]`` annotation, or of one inside ``X | None``."""
    if typing.get_origin(annotation) is Literal:
        return tuple(str(value) for value in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            values = _literal_values(arg)
            if values:
                return values
    return ()


def _accepts_more(annotation: Any) -> bool:
    """True when a union holds, besides its ``Literal`` and ``None``, other values (a
    ``taesd:<folder>`` beside the previewer names)."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return any(
        arg is not type(None) and not _literal_values(arg) for arg in typing.get_args(annotation)
    )


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(annotation)


class OptionProblem(ValueError):
    """One option's value refused by a backend's ``Options``: which option, the value given,
    the rule it breaks and the fix (the allowed values or range)."""

    def __init__(self, name: str, value: Any, rule: str, fix: str) -> None:
        self.name, self.value, self.rule, self.fix = name, value, rule, fix
        super().__init__(f"option {name}={value!r} is not allowed ({rule}). Fix: {fix}")


def check_options(model: type[Options], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked through ``model``: the options that were set, with aliases turned into
    their choices. Raises ``OptionProblem`` for the first option that breaks a rule."""
    try:
        checked = model(**given)
    except ValidationError as error:
        raise _problem(model, given, error.errors()[0]) from None
    return checked.model_dump(exclude_unset=True, exclude_none=True)


def _problem(model: type[Options], given: dict[str, Any], error: Any) -> OptionProblem:
    loc = error.get("loc") or ("options",)
    name = str(loc[0])
    value = given.get(name, error.get("input"))
    field = model.model_fields.get(name)
    if error["type"] == "extra_forbidden" or field is None:
        known = ", ".join(model.model_fields) or "none"
        return OptionProblem(
            name,
            value,
            "not an option this backend understands",
            f"remove it; this backend's options are: {known}.",
        )
    described = (field.description or "").strip().rstrip(".")
    choices = model.choices().get(name)
    if choices:
        fix = f"use one of: {', '.join(choices)}."
        if _accepts_more(field.annotation) and described:
            fix = f"use one of: {', '.join(choices)} (the option takes {described})."
        return OptionProblem(
            name, value, f"not one of the values this backend offers for {name}", fix
        )
    if error["type"] == "string_pattern_mismatch" and described:
        return OptionProblem(name, value, "not a value this option takes", f"use {described}.")
    low = high = None
    for rule in field.metadata:
        low = getattr(rule, "ge", getattr(rule, "gt", low))
        high = getattr(rule, "le", getattr(rule, "lt", high))
    if low is not None or high is not None:
        span = (
            f"from {low:g} to {high:g}"
            if low is not None and high is not None
            else f"of at least {low:g}"
            if low is not None
            else f"of at most {high:g}"
        )
        return OptionProblem(
            name, value, error["msg"][0].lower() + error["msg"][1:], f"use a number {span}."
        )
    if error["type"] == "value_error":  # a field_validator's own words name the fix
        rule = str(error["msg"]).removeprefix("Value error, ")
        return OptionProblem(name, value, rule, "leave it unset, or change it as said.")
    what = described or "a value of the right type"
    return OptionProblem(
        name, value, error["msg"][0].lower() + error["msg"][1:], f"give {name} {what}."
    )
