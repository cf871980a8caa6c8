"""A pytest plugin (``tests/conftest.py`` loads it): the order pytest-xdist hands out the work.

``make test`` runs pytest-xdist with ``--dist loadgroup --no-loadscope-reorder``: each worker
gets the next unit of work (a test, or an ``xdist_group``'s tests together) in the workers'
collection order, which this plugin sorts. Its own order (largest groups first, then single
tests) started the groups that mostly wait together: the paced tests (about 210 s of waiting on
timed steps), the Ray cluster's (about 110 s), then the Chromium modules one after another on
the one worker left, so a quiet run's two cores were about 75% busy for its first 200 s.

Sorted here, the waiting groups start first, each on its own worker, and the other workers
(``make test`` runs one per core and two more) keep the cores busy beside them; then the
longest work, so that none starts last: groups with a test marked slow, the other groups
largest first, the single tests marked slow, then the rest in collection order.
"""

from __future__ import annotations

from collections import Counter

import pytest
from xdist_groups import group_of

WAITING_GROUPS = ("paced", "ray")
"""The groups that spend most of their time waiting, each started first on its own worker."""


@pytest.hookimpl(trylast=True)  # after the hooks that add the group marks (tests/conftest.py)
def pytest_collection_modifyitems(config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # only the workers' order is the run's
        return
    groups = {id(item): group_of(item) for item in items}
    sizes = Counter(groups.values())
    slow_groups = {groups[id(item)] for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        group = groups[id(item)]
        if group in WAITING_GROUPS:
            return (0, WAITING_GROUPS.index(group))
        if group is not None:
            return (1 if group in slow_groups else 2, -sizes[group])
        return (3 if item.get_closest_marker("slow") else 4, 0)

    items.sort(key=rank)  # stable: collection order within a rank
