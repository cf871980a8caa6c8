"""The family table's tests run family by family: each family's tests one after another."""

from __future__ import annotations

import pytest
from xdist_groups import group_of

FAMILY_TESTS = "test_diffusers_families.py"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the order
def pytest_collection_modifyitems(items) -> None:
    """Puts each family's tests of the families module next to each other (in the places the
    module's tests hold, the order within a family kept). Their backend keeps one pipeline
    loaded, so test by test through every family it loaded each family once per test: a tiny
    family's load is about 0.6 s and a run after it about 0.15 s."""
    places = [i for i, item in enumerate(items) if item.path.name == FAMILY_TESTS]
    in_order = sorted((items[i] for i in places), key=_family)
    for place, item in zip(places, in_order, strict=True):
        items[place] = item


def _family(item) -> str:
    """A test's family: its xdist group (``family-<name>``); "" for the module's other tests."""
    return group_of(item) or ""
