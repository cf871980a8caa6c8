"""A pytest plugin (``tests/conftest.py`` loads it), also called by the test apps that run as
scripts: the Gradio apps that the tests serve themselves look for new work every 10 ms while
their queue is idle, instead of every millisecond.

Gradio 6's queue (``gradio/queueing.py``, ``Queue.sleep_when_free`` and
``progress_update_sleep_when_free``) wakes every millisecond while it has nothing to do, and
its progress loop every 10 ms. An idle app took 2.8% of a core here, and 5 idle apps in one
process 8.7% (2.6% with the intervals below). A test run keeps many apps alive at once (each
worker's module and session fixtures, the fake remote apps in their processes): with this
plugin a quiet ``-n 4`` run here kept the cores busy for 611 CPU seconds instead of 631, and
its test workers used 235 instead of 251 (pytest 317.5 s instead of 328.5 s, the same day).
Gradio 5 polls every 50 and 100 ms; an interval Gradio already makes longer is kept.

A job an idle app is sent now starts up to 10 ms later, and a progress update waits up to
50 ms; no test judges by time. Only the tests' own apps change: the demo and the Space run as
scripts (``demo/app.py``, the Space folder's ``app.py``), the benchmark's apps (whose server
CPU ``make bench`` measures) and every app of a user keep Gradio's own intervals.
"""

from __future__ import annotations

import functools

IDLE_SECONDS = 0.01
"""How often an idle queue looks for a new job (Gradio 6: 0.001 s)."""
PROGRESS_SECONDS = 0.05
"""How often the queue's progress loop looks for updates to send (Gradio 6: 0.01 s)."""


def relax_idle_polling() -> None:
    """Every Gradio queue made from now on in this process polls at the intervals above (or at
    Gradio's own, where they are longer). Once per process; a Gradio without these settings is
    left as it is."""
    from gradio import queueing

    queue_class = queueing.Queue
    if getattr(queue_class, "_idle_polling_relaxed", False):
        return
    original_init = queue_class.__init__

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        for name, seconds in (
            ("sleep_when_free", IDLE_SECONDS),
            ("progress_update_sleep_when_free", PROGRESS_SECONDS),
        ):
            if isinstance(getattr(self, name, None), int | float):
                setattr(self, name, max(getattr(self, name), seconds))

    queue_class.__init__ = __init__
    queue_class._idle_polling_relaxed = True


def pytest_configure(config) -> None:
    """In each process that runs tests: not in pytest-xdist's controller, which serves no app
    (importing Gradio there would cost it 2.5 CPU seconds)."""
    controller = not hasattr(config, "workerinput") and bool(
        getattr(config.option, "numprocesses", None)
    )
    if not controller:
        relax_idle_polling()
