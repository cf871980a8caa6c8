"""Scenarios on a ZeroGPU Space (``zerogpu_space``), run in a process of their own by
``tests/backends/zerogpu``: ``python zerogpu_scenarios.py NAME...`` prints one JSON line per
scenario, ``{NAME: what it saw}`` (or ``{NAME: {"failed": traceback}}``). Each scenario starts
afresh (``fresh``: a new gated backend and ZeroGPU twin, whose GPU workers are forked anew, and
no leases recorded), so several share one process and its imports. Visitors are Gradio
requests with their own session (``gradio.Request``)."""

from __future__ import annotations

import json
import sys
import threading
import traceback

import gradio as gr  # noqa: E402
import support.zerogpu_space as space  # first: imports spaces as on a Space
from gradio.context import LocalContext  # noqa: E402
from support.toy_backends import registry_with  # noqa: E402

from gradio_diffusion_preview import (  # noqa: E402
    astream,
    cancel_run,
    finish_run,
    on_zerogpu,
    stream,
)
from gradio_diffusion_preview.compare import compare  # noqa: E402
from gradio_diffusion_preview.policy import CatalogueEntry, Policy  # noqa: E402
from gradio_diffusion_preview.run_handles import runs_of_session  # noqa: E402


def fresh() -> None:
    """A scenario's own gated backend, registry and ZeroGPU twin (a new ``@spaces.GPU``
    function: its workers are forked after its gate is made), and no leases recorded yet."""
    global BACKEND, GATE, REGISTRY, ZERO
    BACKEND, GATE = space.gated_backend()
    REGISTRY = registry_with(BACKEND)
    ZERO = on_zerogpu(BACKEND, registry=REGISTRY, duration=7)
    space.SCHEDULED.clear()


fresh()


class Visit:
    """A visitor's run of ``stream`` on a thread of its own, inside their Gradio request."""

    def __init__(self, session: str, policy: Policy | None = None, **fields) -> None:
        self.session, self.states, self.error = session, [], None
        self.seen = threading.Condition()
        fields = {"prompt": "a", "steps": 50, "seed": 1, **fields}
        if policy is not None:
            fields["model"] = policy.catalogue[0].id
        self.thread = threading.Thread(target=self._run, args=(ZERO.id, policy, fields))
        self.thread.start()

    def _run(self, backend, policy, fields) -> None:
        LocalContext.request.set(gr.Request(session_hash=self.session))
        try:
            for state in stream(backend, registry=REGISTRY, policy=policy, **fields):
                with self.seen:
                    self.states.append(state)
                    self.seen.notify_all()
        except gr.Error as error:
            self.error = error.message
        with self.seen:
            self.states.append(None)
            self.seen.notify_all()

    def until(self, test) -> object:
        with self.seen:
            while not any(s is not None and test(s) for s in self.states):
                if None in self.states:
                    raise AssertionError(f"ended first: {self.summary()}")
                self.seen.wait(1)
            return next(s for s in self.states if s is not None and test(s))

    def end(self) -> dict:
        self.thread.join()
        return self.summary()

    def summary(self) -> dict:
        last = [s for s in self.states if s is not None][-1]
        return {
            "status": last.status,
            "step": last.step,
            "reason": last.reason,
            "message": last.message,
            "images": [list(image.size) for image in last.images],
            "previews": sum(1 for s in self.states if s is not None and s.preview),
            "error": self.error,
        }


def previews_and_final() -> dict:
    GATE.open()
    return {**Visit("alice", steps=6).end(), "scheduled": space.SCHEDULED, "ran": GATE.passed}


def stop() -> dict:
    alice = Visit("alice")
    GATE.release(3)
    run_id = alice.until(lambda s: s.step == 3).run_id
    held = {"alice": runs_of_session("alice"), "bob_stops": cancel_run(run_id, "bob")}
    stopped = cancel_run(run_id, "alice")
    GATE.release(10)  # steps the worker would run if Stop had not reached it
    return {**alice.end(), **held, "run_id": run_id, "stopped": stopped, "ran": GATE.passed,
            "after": runs_of_session("alice")}  # fmt: skip


def finish_early() -> dict:
    alice = Visit("alice")
    GATE.release(3)
    run_id = alice.until(lambda s: s.step == 3).run_id
    finished = finish_run(run_id, "alice")
    return {**alice.end(), "finished": finished, "ran": GATE.passed}


def two_visitors() -> dict:
    alice, bob = Visit("alice"), Visit("bob")
    GATE.release(2)
    ids = {name: v.until(lambda s: s.status == "running").run_id for name, v in
           (("alice", alice), ("bob", bob))}  # fmt: skip
    owned = {"alice": runs_of_session("alice"), "bob": runs_of_session("bob")}
    cross = cancel_run(ids["alice"], "bob")
    GATE.open()
    alice.end(), bob.end()
    return {"ids": ids, "owned": owned, "cross": cross, "scheduled": space.SCHEDULED}


def fair_queue() -> dict:
    policy = Policy([CatalogueEntry("toy", ZERO.id, "flat")], max_queue=8)
    alice = Visit("alice", policy)
    alice.until(lambda s: s.status == "running")
    bob = Visit("bob", policy)
    bob.until(lambda s: s.status == "queued")
    carol = Visit("carol", policy)
    carol.until(lambda s: s.status == "queued")
    again = Visit("alice", policy)  # one run per visitor, across every GPU worker
    refused = again.end()
    GATE.open()
    ends = [v.end()["status"] for v in (alice, bob, carol)]
    return {"refused": refused, "ends": ends, "scheduled": space.SCHEDULED}


def compare_tab() -> dict:
    policy = Policy(
        [
            CatalogueEntry("short", ZERO.id, "flat", options={"gpu_duration": 11}),
            CatalogueEntry("long", ZERO.id, "flat", options={"gpu_duration": 22}),
        ],
        slots={ZERO.id: 2},
    )
    GATE.open()
    LocalContext.request.set(gr.Request(session_hash="alice"))
    last = list(compare(policy, ["short", "long"], registry=REGISTRY, prompt="a", steps=3))[-1]
    return {"ends": [(s.status, s.step, s.model, len(s.images)) for s in last],
            "scheduled": space.SCHEDULED}  # fmt: skip


def refused() -> dict:
    GATE.open()
    return {**Visit("broke").end(), "ran": GATE.passed, "after": runs_of_session("broke")}


def async_handler() -> dict:
    """``astream`` (an async Gradio handler), stopped by its visitor after 2 steps."""
    import asyncio

    async def visit() -> dict:
        LocalContext.request.set(gr.Request(session_hash="alice"))
        GATE.release(2)
        states, stopped = [], None
        async for state in astream(ZERO.id, prompt="a", steps=50, seed=1, registry=REGISTRY):
            states.append(state)
            if state.step == 2 and stopped is None:
                stopped = cancel_run(state.run_id, "alice")
                GATE.release(10)
        return {"status": states[-1].status, "stopped": stopped, "ran": GATE.passed}

    return {**asyncio.run(visit()), "scheduled": space.SCHEDULED}


def preload() -> dict:
    """The bundled model loaded at startup in the app's process, then run on two GPU workers:
    neither loads it again (``load_pipeline`` counted across processes)."""
    import multiprocessing

    from gradio_diffusion_preview.backends.diffusers import run as diffusers_run
    from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend

    loads = multiprocessing.get_context("fork").Value("i", 0)
    real_load = diffusers_run.load_pipeline

    def counted_load(*args, **kwargs):
        with loads.get_lock():
            loads.value += 1
        return real_load(*args, **kwargs)

    diffusers_run.load_pipeline = counted_load
    hosted = DiffusersBackend(device="cpu")
    zero = on_zerogpu(hosted, registry=REGISTRY, preload=["bundled:shapes"])
    at_startup = loads.value
    from gradio_diffusion_preview.bundled import resolve_model

    ends = []
    for _ in range(2):
        states = list(stream(zero.id, registry=REGISTRY, model=resolve_model("bundled:shapes"),
                             prompt="a red circle", steps=3, seed=1))  # fmt: skip
        ends.append((states[-1].status, states[-1].step, len(states[-1].images)))
    return {"at_startup": at_startup, "after_runs": loads.value, "ends": ends,
            "scheduled": space.SCHEDULED}  # fmt: skip


def demo() -> dict:
    """The demo on ZeroGPU hardware: its local entries switch to a ``diffusers-zerogpu`` twin
    (their model loaded at startup, the CPU device and dtype dropped, the slots kept), the
    Inference entries stay; a visitor's Generate run finishes on a GPU worker."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
    import app  # the demo's own module

    policy = app.demo_policy()
    entries = {entry.id: (entry.backend, sorted(entry.options)) for entry in policy.catalogue}
    shapes = policy.catalogue[0]
    states = list(stream(shapes.backend, policy=policy, model=shapes.id, prompt="a red circle",
                         steps=3, seed=1))  # fmt: skip
    return {"entries": entries, "slots": policy.slots, "status": states[-1].status,
            "images": len(states[-1].images), "scheduled": space.SCHEDULED}  # fmt: skip


def main(names: list[str]) -> None:
    for index, name in enumerate(names):
        if index:
            fresh()
        try:
            seen = globals()[name]()
        except Exception:  # noqa: BLE001 - this scenario's test fails with it; the rest run
            seen = {"failed": traceback.format_exc()}
        print(json.dumps({name: seen}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
