"""Stop and "finish early" across processes (``zerogpu.signals``): what the app sends through a
``RunControl`` is in the run's slot as soon as it is sent, and a forked process reads it."""

from __future__ import annotations

import multiprocessing

from gradio_diffusion_preview.control import RunControl
from gradio_diffusion_preview.zerogpu.signals import RunSignals, SlotControl


def test_a_watcher_hears_every_signal_until_it_stops_watching():
    control, heard = RunControl(), []
    unwatch = control.watch(lambda: heard.append((control.cancelled, control.finish_requested)))
    control.finish_early()
    unwatch()
    control.cancel()
    assert heard == [(False, False), (False, True)]


def _read_in_child(signals: RunSignals, slot: int, results) -> None:
    control = SlotControl(signals, slot)
    results.put((control.finish_requested, control.wait_cancelled(60)))


def test_a_forked_process_reads_the_signals_sent_after_it_started():
    signals = RunSignals(capacity=4)
    slot = signals.take()
    control = RunControl()
    unwatch = control.watch(lambda: signals.send(slot, control))
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    child = context.Process(target=_read_in_child, args=(signals, slot, results))
    control.finish_early()
    child.start()
    control.cancel()  # the child waits until it reads this
    assert results.get() == (True, True)
    child.join()
    unwatch()
    signals.give_back(slot)


def test_slots_are_reused_and_cleared():
    signals = RunSignals(capacity=1)
    slot = signals.take()
    control = RunControl()
    control.cancel()
    signals.send(slot, control)
    signals.give_back(slot)
    assert signals.take() == slot and signals.read(slot) == 0
