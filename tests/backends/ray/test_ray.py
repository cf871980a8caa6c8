"""The ray backend against a real local Ray Serve: the Ray tests' Ray on loopback (``conftest.py``,
shared with the other Ray modules), two Serve applications reused by every test here.

- ``tiny``: the diffusers backend with the tiny random-weight pipeline, one replica, deployed by
  Ray's own ``serve run`` from the config file that ``python -m gradio_diffusion_preview serve
  config`` prints (started first, so the replica loads while the toy tests run);
- ``toy``: ``ray_toys.ReplicaCountingBackend`` on two replicas (one run each, one queued run),
  deployed from Python with ``serving.run``; it reports its steps to the ``StepLog`` actor, so
  the tests count them on the replica side, and its paced steps feed the widget in Chromium.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray
from browser_helpers import TIMEOUT_MS, generate, probe, progress_steps
from ray import serve as ray_serve

from gradio_diffusion_preview import (
    DiffusionPreview,
    Failed,
    Finished,
    RunControl,
    Status,
    cancel_run,
    stream,
)
from gradio_diffusion_preview.backends.ray.backend import RayBackend
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.request import GenerationRequest
from gradio_diffusion_preview.serving import ServeSettings, run
from gradio_diffusion_preview.testing import check_backend
from gradio_diffusion_preview.testing.checks_previews import expect_previews
from gradio_diffusion_preview.testing.recording import Recording, resolve_request

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray cluster

TESTS = Path(__file__).resolve().parents[2] / "support"  # ray_toys, for the replicas
TOY_STEP = 0.2  # seconds per step of the toy runs that must still be going when a test acts
DEPLOY_TIMEOUT = 240.0


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` (Serve's state has no event to await) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def app_status(name: str) -> str | None:
    status = ray_serve.status().applications.get(name)
    return status.status if status else None


def running_replicas(app: str) -> int:
    status = ray_serve.status().applications.get(app)
    if status is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in status.deployments.values())


def tiny_config(model_dir: Path) -> str:
    """The Serve config the CLI prints for the tiny pipeline on one CPU replica."""
    argv = ["serve", "config", "diffusers", "--app", "tiny", "--num-gpus", "0", "--num-cpus", "0"]
    argv += ["--option", "device=cpu", "--option", f"models={json.dumps([str(model_dir)])}"]
    argv += ["--warmup", str(model_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "gradio_diffusion_preview", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory, tiny_sd15):
    """This module's two Serve applications on the Ray tests' Ray (``conftest.py``)."""
    model_dir = Path(tiny_sd15)
    started = time.monotonic()
    ray_serve.start(proxy_location="Disabled")
    config = tmp_path_factory.mktemp("serve") / "tiny.yaml"
    config.write_text(tiny_config(model_dir))
    # Ray's own `serve run` deploys the printed config, as an operator would.
    deploy = subprocess.Popen(
        [str(Path(sys.executable).parent / "serve"), "run", str(config), "--non-blocking"]
        + ["--address", ray_cluster.gcs],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    toy_settings = ServeSettings(
        app="toy",
        backend="ray-counting",
        plugins=["ray_toys"],
        num_replicas=2,
        max_ongoing_requests=1,
        max_queued_requests=1,
        num_gpus=0,
        num_cpus=0,
        retry_after=3,
    )
    run(toy_settings)
    print(f"\nServe and the toy app up in {time.monotonic() - started:.1f}s", file=sys.stderr)
    yield SimpleNamespace(log=ray_cluster.log, deploy=deploy, model_dir=model_dir, config=config)
    deploy.kill()
    ray_serve.shutdown()  # every application this module deployed; Ray stays for the next


@pytest.fixture(scope="module")
def toy(cluster) -> RayBackend:
    return RayBackend.for_app("toy", id="ray-toy")


@pytest.fixture(scope="module")
def tiny(cluster) -> RayBackend:
    output, _ = cluster.deploy.communicate(timeout=DEPLOY_TIMEOUT)
    assert cluster.deploy.returncode == 0, output
    wait_until(lambda: app_status("tiny") in ("RUNNING", "DEPLOY_FAILED"), DEPLOY_TIMEOUT, "tiny")
    assert app_status("tiny") == "RUNNING", ray_serve.status().applications["tiny"]
    return RayBackend.for_app("tiny", id="ray-tiny", options={"backend": "diffusers"})


def two_replicas() -> None:
    wait_until(lambda: running_replicas("toy") == 2, DEPLOY_TIMEOUT, "two toy replicas")


class Run:
    """One run streamed through ``stream()`` on a thread, as Gradio would run it."""

    def __init__(
        self,
        backend: RayBackend,
        steps: int = 30,
        delay: float = TOY_STEP,
        tag: str | None = None,
        **options,
    ):
        self.tag = tag or uuid.uuid4().hex
        self.states: list = []
        self.first_step = threading.Event()
        self.ended = threading.Event()
        self.stream = stream(
            backend,
            prompt="flat",
            steps=steps,
            seed=1,
            options={"tag": self.tag, "delay": delay, **options},
        )
        threading.Thread(target=self._pull, daemon=True).start()

    def _pull(self) -> None:
        try:
            for state in self.stream:
                self.states.append(state)
                if state.step >= 1:
                    self.first_step.set()
        finally:
            self.ended.set()

    def cancel(self) -> None:
        """Stop it, as the component's API does (``cancel_run``)."""
        assert self.states, "the run has not started"
        cancel_run(self.states[0].run_id)

    @property
    def last(self):
        return self.states[-1]

    def result(self, timeout: float = 60.0):
        assert self.ended.wait(timeout), f"run {self.tag} did not end"
        return self.last


def replica_of(cluster, run: Run) -> str | None:
    return ray.get(cluster.log.replica_of.remote(run.tag))


# --- the toy app: spread, Stop, a full queue, a dead replica --------------------------------


def test_runs_spread_over_two_replicas(cluster, toy):
    two_replicas()
    first = Run(toy, steps=8, delay=0.1)
    assert first.first_step.wait(30)
    second = Run(toy, steps=8, delay=0.1)
    assert first.result().status == second.result().status == "done"
    assert second.last.step == 8 and len(second.last.images) == 1
    assert replica_of(cluster, first) != replica_of(cluster, second)


def test_stop_stops_the_replica_run_within_one_step(cluster, toy):
    tag = uuid.uuid4().hex
    states = stream(toy, prompt="flat", steps=100, seed=1, options={"tag": tag, "delay": TOY_STEP})
    seen = 0
    for state in states:
        seen = state.step
        if seen >= 3:
            break
    states.close()  # what Gradio does on Stop, cancels=[...] or a closed tab
    assert ray.get(cluster.log.wait_ended.remote(tag, 10.0)), "the replica's run did not end"
    replica_steps = ray.get(cluster.log.steps_of.remote(tag))
    assert seen <= replica_steps <= seen + 1, (seen, replica_steps)


def test_a_full_queue_fails_busy_with_retry_after(cluster, toy):
    two_replicas()
    running = []
    for _ in range(2):
        running.append(Run(toy, steps=150))  # 30 s unless cancelled: busy until cancelled below
        assert running[-1].first_step.wait(30)
    # Both replicas are at their one run; one more may wait, the other is refused. The one
    # that waits cannot end before a running run is cancelled, so the first to end is looked
    # at (it was: each given 10 s in turn, the waiting one taking them all).
    extra = [Run(toy, steps=2), Run(toy, steps=2)]
    wait_until(lambda: any(r.ended.is_set() for r in extra), 30, "a refused run")
    busy = [r for r in extra if r.ended.is_set() and r.last.reason == "busy"]
    assert busy, [r.states[-1:] for r in extra]
    failed = busy[0].last
    assert failed.status == "error" and failed.retry_after == 3.0
    assert "busy" in failed.message and "queue is full" in failed.message
    for run_ in running:
        run_.cancel()
    others = [r for r in extra if r not in busy]
    for run_ in others:
        assert run_.result().status in ("done", "error")


def test_a_queued_run_shows_its_place_until_a_replica_takes_it(cluster):
    backend = RayBackend.for_app("toy", id="ray-toy-queue")
    two_replicas()
    running = [Run(backend), Run(backend)]
    for run_ in running:
        assert run_.first_step.wait(30)
    queued = Run(backend, steps=3, delay=0.0)
    wait_until(lambda: any(s.phase == "queued" for s in queued.states), 30, "a queued state")
    waiting = next(s for s in queued.states if s.phase == "queued")
    assert (waiting.status, waiting.queue_position, waiting.queue_size) == ("running", 1, 1)
    assert waiting.message == "Waiting for a free replica…" and waiting.step == 0
    running[0].cancel()
    done = queued.result()
    assert done.status == "done" and done.step == 3, done
    assert queued.states[-2].phase is None  # the steps replaced the waiting view
    # The wait in Serve's queue is its own figure; the time shown counts from the run's start.
    assert done.waited is not None and done.waited >= waiting.elapsed, (waiting, done)
    assert all(s.waited == done.waited for s in queued.states if s.step >= 1)
    phases = [s.phase for s in queued.states if s.phase is not None]
    assert phases[-1] == "generating" and set(phases[:-1]) == {"queued"}, (
        phases
    )  # a replica took it
    running[1].cancel()
    assert running[1].result().status == "cancelled"


def test_a_run_that_waited_for_a_replica_sends_previews_of_the_size_it_announced(cluster):
    """While no replica has the run, the backend announces ``Started`` itself, before the
    replica's backend has said what size its previews will be; they are brought to the size
    announced (found by the kit under load: a queued run announced none and sent 8x8 ones)."""
    backend = RayBackend.for_app("toy", id="ray-toy-queued-previews")
    two_replicas()
    running = [Run(backend), Run(backend)]
    for run_ in running:
        assert run_.first_step.wait(30)
    request = resolve_request(
        backend, {"prompt": "flat", "steps": 3, "width": 96, "height": 64, "options": {"delay": 0}}
    )
    rec = Recording(backend.id, request, backend.capabilities_for(request.model))
    waiting = threading.Thread(
        target=lambda: rec.events.extend(backend.generate(request, RunControl())), daemon=True
    )
    waiting.start()
    wait_until(lambda: any(isinstance(e, Status) for e in rec.events), 30, "the run to wait")
    running[0].cancel()
    waiting.join(60)
    running[1].cancel()
    statuses = [event.phase for event in rec.statuses]
    assert statuses == ["queued", "generating"], rec.events
    assert rec.started.preview_size == (96, 64), rec.started
    # the toy's are 16x16; the replica's steps are coalesced on their way (latest wins)
    assert rec.steps and {step.preview.size for step in rec.steps} == {(96, 64)}, rec.steps
    expect_previews(rec)
    assert running[1].result().status == "cancelled"


def burst(backend: RayBackend, runs: int = 4) -> list:
    """``runs`` runs started at once, as that many visitors pressing Generate together."""
    started = [Run(backend, steps=6, delay=0.1) for _ in range(runs)]
    return [run_.result() for run_ in started]


def replicas_idle(app: str) -> bool:
    """Whether every replica of ``app`` has no request: a run's stream ends here a moment
    before its replica counts its request done, longer on a loaded machine."""
    names = [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and actor["name"].startswith(f"SERVE_REPLICA::{app}#")
    ]
    replicas = [ray.get_actor(name, namespace="serve") for name in names]
    return bool(replicas) and not any(
        ray.get([r.get_num_ongoing_requests.remote() for r in replicas])
    )


def test_the_queue_bound_answers_busy_the_same_way_cold_and_warm(cluster):
    """Two one-run replicas and a queue of one: of four runs at once, three run (one after
    waiting) and one is refused, on a backend's first burst as on its later ones."""
    two_replicas()
    backend = RayBackend.for_app("toy", id="ray-toy-burst")  # its own handle: cold
    for which in ("cold", "warm", "warm again"):
        wait_until(lambda: replicas_idle("toy"), 60, "the toy replicas to be idle")
        ends = burst(backend)
        refused = [end for end in ends if end.status == "error"]
        assert len(refused) == 1 and sum(e.status == "done" for e in ends) == 3, (which, ends)
        assert (refused[0].reason, refused[0].retry_after) == ("busy", 3.0), refused[0]
        assert refused[0].message == (
            "Every replica of the Ray Serve application 'toy' is busy and its queue is full; "
            "try again in about 3 s."
        )


def test_a_run_frees_its_place_before_its_last_event(cluster, toy):
    """The runner passes a run's last event on and only then closes the backend's generator;
    a visitor who starts the next run on seeing it end must find its place free, not "busy"
    (under load, a burst right after another had two refused where one was due)."""
    two_replicas()
    request = GenerationRequest(
        prompt="flat", model="flat", steps=3, seed=1, options={"tag": uuid.uuid4().hex}
    )
    events = toy.generate(request, RunControl())
    try:
        last = next(event for event in events if isinstance(event, Finished | Failed))
        assert isinstance(last, Finished), last
        assert toy._connection.admission.held() == 0  # the generator is still open here
    finally:
        events.close()


@pytest.mark.parametrize("how", ["ray.kill", "os._exit"])
def test_a_dead_replica_fails_only_its_run_and_the_next_run_works(cluster, toy, how):
    two_replicas()
    # The doomed run lasts until it is killed, or until the survivor has a step (os._exit):
    # the survivor is running on the other replica when the doomed one dies (a crash at a
    # fixed step came first on a loaded machine, and took the survivor with it).
    survivor_tag = uuid.uuid4().hex
    crash = {"crash_after": survivor_tag} if how == "os._exit" else {}
    doomed = Run(toy, steps=500, delay=0.5, **crash)
    assert doomed.first_step.wait(30)
    survivor = Run(toy, steps=12, delay=0.1, tag=survivor_tag)
    # This process's router hears of a restarted replica later than Serve's status says it
    # runs (on a loaded machine it routed to the one busy replica for over 23 s): a ceiling.
    assert survivor.first_step.wait(150)
    if how == "ray.kill":
        ray.kill(ray.get_actor(replica_of(cluster, doomed), namespace="serve"), no_restart=True)

    failed = doomed.result()
    assert failed.status == "error" and failed.reason == "unavailable", failed
    assert failed.message == (
        "The replica of the Ray Serve application 'toy' that ran this run stopped mid-run; "
        "try again, the next run goes to a healthy replica."
    )
    assert survivor.result().status == "done"
    after = Run(toy, steps=3, delay=0.0)
    assert after.result().status == "done"
    assert replica_of(cluster, after) != replica_of(cluster, doomed)


def test_an_app_that_is_not_there_fails_unavailable(cluster):
    backend = RayBackend.for_app("no-such-app", id="ray-missing")
    assert backend.availability().usable  # network-free: only a run finds out
    last = list(stream(backend, model="any", prompt="x", steps=2))[-1]
    assert last.status == "error" and last.reason == "unavailable"
    assert last.message == (
        "The Ray Serve application 'no-such-app' is not running on the cluster: start it with "
        "`python -m gradio_diffusion_preview serve run diffusers --app no-such-app` (or set the "
        "endpoint's 'app' option to the name it runs under)."
    )


def test_cli_serve_run_deploys_an_app_the_backend_reaches(cluster, example_plugin):
    argv = ["serve", "run", "example-fractal", "--app", "cli-fractal", "--replicas", "1"]
    assert main([*argv, "--num-gpus", "0", "--num-cpus", "0", "--non-blocking"]) == 0
    try:
        backend = RayBackend.for_app("cli-fractal", id="ray-fractal")
        assert [m.id for m in backend.list_models()] == ["mandelbrot", "julia"]
        last = list(stream(backend, prompt="mandelbrot", steps=4, width=64, height=64))[-1]
        assert last.status == "done" and last.images[0].size == (64, 64)
    finally:
        ray_serve.delete("cli-fractal")


# --- the tiny diffusers app: the mirrored backend, the conformance kit -----------------------


def test_the_ray_backend_mirrors_the_hosted_backend(tiny, cluster):
    from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend

    assert [m.id for m in tiny.list_models()] == [str(cluster.model_dir)]
    # as JSON, as it crosses Ray: the typed Options class stays with the replica, which
    # validates the values; names, choices, labels and ranges arrive whole
    mirrored, hosted = tiny.capabilities, DiffusersBackend.capabilities
    assert mirrored.model_dump(mode="json") == hosted.model_dump(mode="json")
    assert tiny.describe()["endpoint"]["url"] == "auto"


def test_the_ray_backend_describes_its_models_from_inside_an_event_loop(tiny, cluster):
    """An async Gradio handler (or Playwright's sync API) runs a loop on the calling thread,
    where Serve refuses blocking calls; the listing must still work there."""

    async def list_inside_a_loop() -> list[str]:
        tiny.forget_models()
        tiny._described = None  # no cached description: a replica must be asked
        return [m.id for m in tiny.list_models()]

    listed: list = []  # on a thread of its own: this one may already run a loop (Playwright)
    thread = threading.Thread(target=lambda: listed.append(asyncio.run(list_inside_a_loop())))
    thread.start()
    thread.join(120)
    assert listed == [[str(cluster.model_dir)]]


def test_conformance_kit_passes_for_the_ray_backend(tiny):
    report = check_backend(
        tiny,
        prompt="a lighthouse",
        # Long enough that the run is still going when a signal sent after step 2 arrives: it
        # crosses three processes, and at 5 steps a loaded machine let the replica finish first.
        steps=40,
        width=64,
        height=64,
        failing_request={"options": {"scheduler": "no-such-sampler"}},
        # random tiny weights keep nothing of an input picture in a preview (as in the
        # diffusers backend's own kit tests); the image-to-image size check still runs
        skip=("image_to_image_preview",),
    )
    assert set(report.skipped) == {"image_to_image_preview"}, report
    assert "image_to_image" in report.passed, report
    signals = tiny._connection.signals()
    wait_until(lambda: ray.get(signals.pending.remote()) == 0, 10, "finish-early waits released")


# --- the widget in Chromium, fed by the toy app -----------------------------------------------


@pytest.mark.browser
def test_previews_stream_through_ray_into_the_widget(open_page, serve, toy, cluster, output_dir):
    import gradio as gr

    two_replicas()
    tag = uuid.uuid4().hex

    def generate_run(prompt):
        # The replica holds the run before steps 2, 3 and 4 until the page has painted the step
        # before: three distinct previews however busy the machine (paced steps alone left a
        # loaded page time to paint two of 16), then the rest of the run at once.
        options = {"tag": tag, "hold": 3}
        yield from stream(toy, prompt=prompt, steps=16, seed=5, options=options)

    with gr.Blocks() as app:
        prompt = gr.Textbox(label="Prompt")
        button = gr.Button("Generate")
        preview = DiffusionPreview(label="Generation")
        preview.attach_run(button.click(generate_run, prompt, preview))
    page = open_page(serve(app))
    page.evaluate(probe("watch_previews"))
    generate(page, "a lighthouse on Ray")
    for painted in (1, 2, 3):
        page.wait_for_function(
            f"window.__preview_watch.previews.length >= {painted}", timeout=TIMEOUT_MS
        )
        cluster.log.let_on.remote(tag)
    page.get_by_test_id("final-image").first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=output_dir / "done.png", full_page=True)
    seen = page.evaluate("window.__preview_watch")
    assert seen["final_after"] >= 3, f"only {seen['final_after']} distinct previews painted"
    assert seen["broken"] == 0
    assert progress_steps(page) == (16, 16)
    assert not page.errors
    page.close()
