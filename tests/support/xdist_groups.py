"""A pytest plugin (``tests/conftest.py`` loads it): pytest-xdist's ``xdist_group`` marks,
made to work under pytest 9.2."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, and every group mark is on
def pytest_collection_modifyitems(config, items) -> None:
    """The ``xdist_group`` marks, honoured again: pytest-xdist 3.8 groups a worker's tests by a
    ``@group`` suffix it adds to each marked test's ``_nodeid``, which pytest 9.2 no longer
    reads (a node's id is ``_id``), so every group was split over the workers (the Ray tests
    started a Ray on each, the Chromium modules their servers on each). Added here where
    pytest-xdist's did not take."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = {group_name(mark) for mark in item.iter_markers("xdist_group")}
        if groups and "@" not in item.nodeid:
            from _pytest.nodeid import coerce_node_id  # pytest 9.2's node ids

            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(groups))}")


def group_name(mark: pytest.Mark) -> str:
    """An ``xdist_group`` mark's group, as pytest-xdist reads it."""
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def group_of(item: pytest.Item) -> str | None:
    """The test's xdist group (its closest mark's), or None."""
    mark = item.get_closest_marker("xdist_group")
    return None if mark is None else group_name(mark)
