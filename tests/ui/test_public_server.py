"""A public app through a real server (gradio_client and raw HTTP): run ownership, the hidden
Stop and finish handlers, fair waiting with visible positions, busy answers, one run per
session, and final images removed after their age."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api_results import final_state
from gradio_client import Client
from public_app import Visitor, build_app, launched
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)

STEP_SECONDS = 0.05


@pytest.fixture(scope="module")
def policy():
    return Policy(
        catalogue=[CatalogueEntry(id="flat", backend="counting", model="flat")],
        limits=Limits(max_steps=500),
        max_queue=3,
        image_max_age=1.0,
        runs_per_client=8,  # its clients stand for several people, all on loopback
    )


@pytest.fixture(scope="module")
def app_url(policy):
    registry = registry_with(CountingBackend(step_seconds=STEP_SECONDS))
    with launched(build_app(policy, registry, "counting")) as url:
        yield url


def first_state(job, status: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = job.done()
        for value in job.outputs():
            if value and value.get("status") == status:
                return value
        if done:
            break
        time.sleep(0.02)
    raise AssertionError(f"no {status!r} state in {job.outputs()[-3:]}")


def test_the_stop_and_finish_handlers_are_not_on_the_api_page(app_url):
    info = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    assert list(info["named_endpoints"]) == ["/generate"]
    assert not info["unnamed_endpoints"]


def test_a_visitor_cannot_stop_someone_elses_run(app_url):
    owner = Client(app_url, verbose=False)
    job = owner.submit("a", "flat", 60, api_name="/generate")
    run_id = first_state(job, "running")["run_id"]
    intruder = Visitor(app_url, "intruder")
    stop = intruder.fn_index(event="stop")
    finish = intruder.fn_index(event="finish")
    for fn in (stop, finish):
        answer = intruder.call_for_run(fn, run_id)
        assert answer.status_code == 200, answer.text
        # the same answer for a run id that does not exist: nothing to probe
        other = intruder.call_for_run(fn, "0" * 32)
        assert other.json()["data"] == answer.json()["data"]
    final = job.result(timeout=60)
    assert final["status"] == "done" and final["step"] == 60, final["message"]
    intruder.close()


def test_a_visitor_can_stop_their_own_run(app_url):
    owner = Client(app_url, verbose=False)
    job = owner.submit("a", "flat", 200, api_name="/generate")
    run_id = first_state(job, "running")["run_id"]
    me = Visitor(app_url, "me")
    me.session = owner.session_hash
    answer = me.call_for_run(me.fn_index(event="finish"), run_id)
    assert answer.status_code == 200, answer.text
    final = job.result(timeout=60)
    assert final["status"] == "done" and final["step"] < 200, final
    me.close()


def test_a_stop_that_names_no_run_acts_on_the_callers_own_runs_only(app_url):
    """API clients cannot send event data: a Stop or finish without a run id means "my runs"."""
    owner = Client(app_url, verbose=False)
    job = owner.submit("a", "flat", 200, api_name="/generate")
    first_state(job, "running")
    intruder = Visitor(app_url, "intruder")
    for event in ("stop", "finish"):
        answer = intruder.call_for_run(intruder.fn_index(event=event), None)
        assert answer.status_code == 200, answer.text
    me = Visitor(app_url, "me")
    me.session = owner.session_hash
    answer = me.call_for_run(me.fn_index(event="finish"), None)
    assert answer.status_code == 200, answer.text
    final = job.result(timeout=60)
    assert final["status"] == "done" and 0 < final["step"] < 200, final
    intruder.close()
    me.close()


def test_runs_wait_in_arrival_order_with_their_position_and_a_full_line_is_busy(app_url, policy):
    clients = [Client(app_url, verbose=False) for _ in range(5)]
    first = clients[0].submit("a", "flat", 40, api_name="/generate")
    first_state(first, "running")
    waiting = []
    for client in clients[1:4]:
        job = client.submit("a", "flat", 2, api_name="/generate")
        first_state(job, "queued")  # joined the line before the next one arrives
        waiting.append(job)
    refused = final_state(clients[4].submit("a", "flat", 2, api_name="/generate"), 30)
    assert refused["status"] == "error" and refused["reason"] == "busy"
    assert refused["retry_after"] > 0 and "try again in about" in refused["message"]

    # each saw its true place, and the line as long as it was when it joined
    seen = [first_state(job, "queued") for job in waiting]
    assert [(s["queue_position"], s["queue_size"]) for s in seen] == [(1, 1), (2, 2), (3, 3)]
    assert all("Waiting for your turn" in s["message"] for s in seen)
    finals = [job.result(timeout=60) for job in [first, *waiting]]
    assert [f["status"] for f in finals] == ["done"] * 4
    assert policy.queue.active() == (0, 0)


def test_one_active_run_per_session(app_url):
    client = Client(app_url, verbose=False)
    job = client.submit("a", "flat", 40, api_name="/generate")
    first_state(job, "running")
    second = final_state(client.submit("a", "flat", 2, api_name="/generate"), 30)
    assert second["status"] == "error" and second["reason"] == "busy"
    assert "already have a run" in second["message"]
    assert job.result(timeout=60)["status"] == "done"


def test_final_images_leave_the_disk_after_their_age(app_url):
    client = Client(app_url, verbose=False, download_files=False)
    first = client.predict("a", "flat", 2, api_name="/generate")
    path = Path(first["images"][0]["path"])
    assert path.exists()
    time.sleep(1.2)
    client.predict("a", "flat", 3, api_name="/generate")  # each save sweeps the expired
    assert not path.exists() and not path.parent.exists()
