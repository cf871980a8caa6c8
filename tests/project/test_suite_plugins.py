"""The suite's own plugins (tests/support): the frozen heap, the shared TLS contexts, the idle
queues' polling and Gradio's skipped stub writer are in force in every test process (the last
also in the processes the tests start), the work is handed out in work_order's order, and the
commands tests start get Ctrl-C as from a terminal (tests/conftest.py)."""

from __future__ import annotations

import gc
import os
import ssl
import subprocess
import sys
import weakref
from pathlib import Path
from types import SimpleNamespace

import gradio_stubs
import httpx
import idle_queues
import offline_tls
import pytest
import work_order

ROOT = Path(__file__).resolve().parents[2]


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_outlived_the_collection_is_frozen_and_new_garbage_is_still_collected():
    assert gc.get_freeze_count() > 10_000  # pytest, the test modules and their imports
    cycle = Cycle()
    dead = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert dead() is None, "a cycle made after the freeze was not collected"


def test_httpx_clients_share_the_context_httpx_builds_for_their_setting():
    build = offline_tls.transports.create_ssl_context  # what every httpx transport calls
    assert build(verify=True) is build(verify=True)
    assert build(verify=False) is not build(verify=True)
    assert build(verify=False).verify_mode == ssl.CERT_NONE
    own = ssl.create_default_context()
    assert build(verify=own) is own
    expected = offline_tls.BUILD(verify=True)
    assert build(verify=True).get_ca_certs() == expected.get_ca_certs()
    with httpx.Client() as client:  # a client's transport got it
        assert client._transport._pool._ssl_context is build(verify=True)


class Item:
    """What work_order reads of a test: its name, xdist group and slow mark."""

    def __init__(self, name: str, group: str | None = None, slow: bool = False) -> None:
        self.name, self.group, self.slow = name, group, slow

    def get_closest_marker(self, name: str):
        if name == "xdist_group" and self.group:
            return pytest.mark.xdist_group(self.group).mark
        if name == "slow" and self.slow:
            return pytest.mark.slow.mark
        return None


def test_an_app_the_tests_serve_polls_its_idle_queue_every_10_ms():
    import gradio as gr

    # Gradio's own intervals are shorter (6.x: 1 ms and 10 ms); a Gradio that renamed them
    # fails here instead of polling at its own pace again unnoticed
    queue = gr.Blocks().queue()._queue
    assert queue.sleep_when_free == idle_queues.IDLE_SECONDS == 0.01
    assert queue.progress_update_sleep_when_free == idle_queues.PROGRESS_SECONDS


SHOW_STUB_WRITER = "import gradio.component_meta as m; print(m.create_or_modify_pyi.__name__)"


def test_gradio_writes_no_stubs_here_nor_in_the_processes_the_tests_start():
    from gradio import component_meta

    # a Gradio that renamed its stub writer fails here instead of writing stubs again unnoticed
    assert component_meta.create_or_modify_pyi is gradio_stubs._no_stubs
    started = subprocess.run(
        [sys.executable, "-c", SHOW_STUB_WRITER], capture_output=True, text=True, check=True
    )
    assert (started.stdout, started.stderr) == ("_no_stubs\n", "")


def test_a_process_started_with_a_path_of_its_own_writes_the_stubs_as_gradio_does():
    started = subprocess.run(
        [sys.executable, "-c", SHOW_STUB_WRITER],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "backend")},
    )
    assert started.stdout == "create_or_modify_pyi\n"


def test_the_waiting_groups_come_first_then_the_longest_work():
    items = [
        Item("single"),
        Item("ui-1", "chromium-ux"),
        Item("slow-single", slow=True),
        Item("paced-1", "paced"),
        Item("ray-1", "ray", slow=True),
        Item("ui-2", "chromium-ux"),
        Item("bench-1", "bench-scripts", slow=True),
        Item("page-1", "chromium-page"),
        Item("paced-2", "paced"),
        Item("bench-2", "bench-scripts"),
        Item("ui-3", "chromium-ux"),
        Item("other-single"),
    ]
    work_order.pytest_collection_modifyitems(SimpleNamespace(workerinput={}), items)
    assert [item.name for item in items] == [
        *("paced-1", "paced-2", "ray-1"),  # the waiting groups, each to a worker of its own
        *("bench-1", "bench-2"),  # a group with a slow test
        *("ui-1", "ui-2", "ui-3", "page-1"),  # the other groups, largest first
        *("slow-single", "single", "other-single"),  # slow single tests, then the rest
    ]


def test_without_workers_the_order_is_the_collections():
    items = [Item("single"), Item("paced-1", "paced")]
    work_order.pytest_collection_modifyitems(SimpleNamespace(), items)
    assert [item.name for item in items] == ["single", "paced-1"]


def test_commands_the_tests_start_get_ctrl_c_as_from_a_terminal():
    said = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert said.strip() == "<built-in function default_int_handler>"
