"""EventChannel: order kept, steps coalesced (latest wins), producer never blocked."""

import threading
import time

from gradio_diffusion_preview.channel import EventChannel
from gradio_diffusion_preview.events import Failed, Finished, Started, Step


def started():
    return Started(10, "m", [1], 64, 64)


def test_steps_coalesce_latest_wins_and_milestones_keep_order():
    channel = EventChannel()
    channel.put(started())
    for step in range(1, 6):
        channel.put(Step(step, 10))
    channel.put(Finished([], [1]))
    channel.close()
    events = []
    while (event := channel.get()) is not None:
        events.append(event)
    assert [type(e).__name__ for e in events] == ["Started", "Step", "Finished"]
    assert events[1].step == 5
    assert channel.dropped_steps == 4


def test_a_pending_step_is_delivered_before_a_later_failure():
    channel = EventChannel(min_interval=10.0)
    channel.put(Step(1, 2))
    channel.get()
    channel.put(Step(2, 2))
    channel.put(Failed("x"))
    assert channel.get(timeout=0.1).step == 2  # not held: a milestone waits behind it
    assert isinstance(channel.get(timeout=0.1), Failed)


def test_min_interval_holds_a_lone_step_and_a_newer_one_replaces_it():
    channel = EventChannel(min_interval=0.2)
    channel.put(Step(1, 10))
    assert channel.get(timeout=1).step == 1
    channel.put(Step(2, 10))
    assert channel.get(timeout=0.05) is None  # held back by the interval
    channel.put(Step(3, 10))
    assert channel.get(timeout=1).step == 3


def test_producer_never_blocks_on_a_consumer_that_does_not_read():
    channel = EventChannel(min_interval=1.0)
    done = threading.Event()

    def produce():
        for step in range(100_000):
            channel.put(Step(step, 100_000))
        done.set()

    threading.Thread(target=produce).start()
    assert done.wait(10), "the producer was blocked by an idle consumer"
    assert channel.get(timeout=1).step == 99_999
    assert channel.dropped_steps == 99_999


def test_get_returns_none_when_closed_and_drained():
    channel = EventChannel()
    channel.close()
    start = time.monotonic()
    assert channel.get() is None
    assert time.monotonic() - start < 1
