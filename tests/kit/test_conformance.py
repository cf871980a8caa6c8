"""The conformance kit: it passes backends that keep the contract (the example plugin, every
built-in backend, a reference toy) and fails deliberately broken ones with messages that say
which backend, what was expected and what was seen."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from gradio_diffusion_preview import (
    Availability,
    Backend,
    Capabilities,
    Failed,
    Finished,
    GenerationRequest,
    ModelDefaults,
    ModelInfo,
    Registry,
    Started,
    Status,
    Step,
)
from gradio_diffusion_preview.testing import (
    CHECKS,
    DEFAULT_HANG_CEILING,
    ConformanceError,
    Recording,
    check_backend,
    check_batch,
    check_cancel,
    check_cancel_at_start,
    check_event_order,
    check_failure,
    check_final_images,
    check_finish_early,
    check_identity,
    check_image_to_image,
    check_no_files,
    check_previews,
    check_seed,
    check_status,
    check_steps,
    check_stream,
    default_fields,
    run_backend,
)
from gradio_diffusion_preview.testing.recording import hang_ceiling

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gdp-example-plugin"
HTTP_EXAMPLE = ROOT / "backend" / "gradio_diffusion_preview" / "examples" / "http-image-service"
FAILING = {"options": {"explode": True}}


LATE = {"two-steps-late": 2, "three-steps-late": 3}
"""Faults of a backend acting on a signal that many steps after it came."""


class Toy(Backend):
    """A backend that keeps the contract, unless told to break it in the named ways."""

    id = "toy"
    display_name = "Toy"
    location = "local"
    capabilities = Capabilities(
        negative_prompt=False,
        guidance=False,
        size_multiple=8,
        min_size=16,
        max_size=256,
        default_size=(32, 32),
        steps_range=(1, 50),
        default_steps=5,
        max_batch=2,
        finish_early=True,
        options={"explode": "fail the run (a test of failures)"},
        image_to_image=True,
    )

    def __init__(self, *faults: str) -> None:
        self.faults = set(faults)
        self.release = threading.Event()  # lets a "hangs" run end when the test is over

    def models(self):
        return [ModelInfo(id="toy-1")]

    def generate(self, request, control):
        broken = self.faults.__contains__
        steps, width, height = request.steps, request.width, request.height
        seeds = [(request.seed or 0) + i for i in range(request.num_images)]
        if request.options.get("explode"):
            if broken("raises-on-failure"):
                raise ValueError("kaboom")
            yield Failed(
                "The toy exploded, as asked. Remove the 'explode' option.", "invalid_request"
            )
            return
        if broken("step-first"):
            yield Step(1, steps)
        yield Started(
            total_steps=steps + broken("wrong-total"),
            model=request.model,
            seeds=seeds,
            width=width,
            height=height,
            num_images=len(seeds),
            preview_size=(width // 2, height // 2),
        )
        rng = np.random.default_rng(None if broken("ignores-seed") else request.seed)
        pixels = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in seeds]
        if request.init_image is not None and not broken("ignores-input"):
            # image-to-image: the input with noise mixed in as much as the strength says
            start = np.asarray(request.init_image.convert("RGB").resize((width, height)))
            mix = request.strength
            pixels = [((1 - mix) * start + mix * p).astype(np.uint8) for p in pixels]
        signal_seen_at = None
        for step in range(1, steps + 1):
            if signal_seen_at is None and (control.cancelled or control.finish_requested):
                signal_seen_at = step
            if broken("one-step-late") and signal_seen_at == step:
                pass  # acts on a signal one step after it came: one more Step
            elif signal_seen_at and step < signal_seen_at + max(
                [late for fault, late in LATE.items() if broken(fault)], default=0
            ):
                pass  # as a backend a step ahead of its reader (its own thread), or later
            elif control.cancelled and not broken("ignores-cancel"):
                if broken("slow-cancel"):  # a cleanup that takes a while on a busy machine
                    time.sleep(SLOW_STOP_SECONDS)
                if broken("hangs-after-cancel"):
                    self.release.wait()
                if broken("finishes-after-cancel"):
                    yield self._finished(pixels, seeds)
                return
            elif control.finish_requested and not broken("ignores-finish"):
                if broken("slow-finish"):  # a final decode that takes a while
                    time.sleep(SLOW_STOP_SECONDS)
                yield self._finished(pixels, seeds, early=True)
                return
            if broken("raises") and step == 2:
                raise RuntimeError("CUDA error: device-side assert triggered")
            if broken("hangs") and step == 2:
                self.release.wait()
                return
            yield Step(step, steps, self._previews(pixels, step))
        yield self._finished(pixels, seeds)
        if broken("step-after-finish"):
            yield Step(steps, steps)

    def _previews(self, pixels, step):
        """One preview for the run, or with "per-image" one per image of the batch."""
        if not self.faults & {"per-image", "per-image-short", "per-image-size"}:
            return self._preview(pixels[0], step)
        previews = [self._preview(p, step) for p in pixels]
        if "per-image-short" in self.faults:
            return previews[:-1]
        if "per-image-size" in self.faults:
            previews[-1] = previews[-1][::2]
        return previews

    def _preview(self, pixels, step):
        preview = pixels[::2, ::2] // step
        if self.faults & {"preview-size"}:
            return preview[::2, ::2]
        if self.faults & {"float-preview"}:
            return preview / 255.0
        if self.faults & {"preview-file", "preview-file-on-a-thread"}:
            path = Path(tempfile.gettempdir()) / f"toy-preview-{os.getpid()}-{step}.png"

            def save() -> None:
                PIL.Image.fromarray(preview).save(path)
                path.unlink()

            if "preview-file" in self.faults:
                save()
            else:  # a helper thread the run starts writes it
                helper = threading.Thread(target=save)
                helper.start()
                helper.join()
        return preview

    def _finished(self, pixels, seeds, early=False):
        images = [PIL.Image.fromarray(p) for p in pixels]
        if "final-size" in self.faults:
            images = [image.resize((image.width // 2, image.height // 2)) for image in images]
        if "one-image" in self.faults:
            images, seeds = images[:1], seeds[:1]
        return Finished(images, seeds, early=early)


class Waiter(Backend):
    """A backend like a remote image API that reports no steps: Started, Status events while
    it is queued and generating, then Finished; unless told to break the contract in the named
    ways. ``statuses`` replaces the Status events it sends."""

    id = "waiter"
    display_name = "Waiter"
    location = "remote"
    capabilities = Capabilities(
        step_events=False,
        step_previews=False,
        negative_prompt=False,
        guidance=False,
        size_multiple=8,
        min_size=16,
        max_size=256,
        default_size=(32, 32),
        steps_range=(1, 50),
        default_steps=5,
        max_batch=2,
        options={"refuse": "fail the run as a rate-limited service would (a test of failures)"},
    )
    STATUSES = (
        Status("queued", position=2, queue_size=3, eta=0.5),
        Status("queued", position=1, queue_size=2),
        Status("generating", "Drawing…", eta=0.1),
    )

    def __init__(self, *faults: str, statuses=STATUSES) -> None:
        self.faults = set(faults)
        self.statuses = list(statuses)
        self.release = threading.Event()  # lets a "blocks" run end when the test is over

    def models(self):
        return [ModelInfo(id="waiter-1")]

    def generate(self, request, control):
        broken = self.faults.__contains__
        seeds = [(request.seed or 0) + i for i in range(request.num_images)]
        if broken("status-first"):
            yield Status("queued", position=1, queue_size=1)
        yield Started(
            request.steps, request.model, seeds, request.width, request.height, len(seeds)
        )
        if request.options.get("refuse"):
            reason = "quota_exceeded" if broken("unknown-reason") else "rate_limited"
            retry = {"negative-retry": -1.0, "endless-retry": math.inf}
            yield Failed(
                "The waiter is rate limited, as asked. Remove the 'refuse' option.",
                reason,
                next((retry[f] for f in self.faults if f in retry), 1.5),
            )
            return
        if broken("blocks"):  # a blocking call on the generator's thread that never answers
            self.release.wait()
            if control.cancelled:
                return
        if broken("fake-steps"):
            yield Step(2, request.steps)
            yield Step(1, request.steps)
        for status in self.statuses:
            yield status
            if broken("ignores-cancel"):
                time.sleep(0.01)
            elif control.wait_cancelled(0.01):
                if broken("fails-after-cancel"):
                    yield Failed("The request was cancelled.", "remote_error")
                return
        images = [
            PIL.Image.fromarray(
                np.random.default_rng(seed).integers(
                    0, 256, (request.height, request.width, 3), dtype=np.uint8
                )
            )
            for seed in seeds
        ]
        yield Finished(images, seeds)


WAITER_FAILING = {"options": {"refuse": True}}
SLOW_STOP_SECONDS = 1.2
"""How long a "slow-cancel" or "slow-finish" toy takes to stop: longer than the kit's old
wall-clock bound (about three step times, at least 1 s), which a busy machine could break."""


class RunsAhead(Toy):
    """A backend whose generation runs ahead of its consumer with a latest-wins hand-off, as
    the diffusers backend's pipeline thread does: each pull finds it up to ``ahead`` steps
    further, and only the latest of them is delivered. On a 5-step run the whole run is done
    by the time the kit sees Step 2, so a signal sent then comes too late to act on.
    ``runs`` records the steps of each run it was asked for."""

    def __init__(self, *faults: str, ahead: int = 5) -> None:
        super().__init__(*faults)
        self.ahead = ahead
        self.runs: list[int] = []

    def generate(self, request, control):
        steps, seeds = request.steps, [request.seed or 0]
        self.runs.append(steps)
        yield Started(steps, request.model, seeds, request.width, request.height, 1)
        pixels = [np.full((request.height, request.width, 3), 128, np.uint8)]
        done = 0
        while done < steps:
            for _ in range(min(self.ahead, steps - done)):  # the pipeline, between two pulls
                if control.cancelled:
                    return
                if control.finish_requested and "ignores-finish" not in self.faults:
                    yield self._finished(pixels, seeds, early=True)
                    return
                done += 1
            yield Step(done, steps)
        if not control.cancelled:
            yield self._finished(pixels, seeds)


def expect(
    error: pytest.ExceptionInfo,
    check: str,
    expected: str,
    seen: str | tuple[str, ...],
    backend: str = "toy",
    fix: str | None = None,
) -> None:
    """The error names the backend and the check, and says what was expected and seen (one
    phrase, or several that must all be there) and, where given, the fix."""
    assert isinstance(error.value, AssertionError)
    assert error.value.backend == backend and error.value.check == check
    assert expected in error.value.expected, error.value.expected
    for phrase in (seen,) if isinstance(seen, str) else seen:
        assert phrase in error.value.seen, error.value.seen
    message = str(error.value)
    assert message.startswith(f"Backend '{backend}' fails the {check} check: expected ")
    assert "events: " in message or check in ("identity", "stream", "request")
    if fix is not None:
        assert fix in (error.value.fix or ""), error.value.fix
        assert f"\n    fix: {error.value.fix}" in message


# --- the kit passes what keeps the contract --------------------------------------------------


def test_kit_passes_a_backend_that_keeps_the_contract():
    # Toy declares its options the old way, a dict of names (deprecated, still supported):
    # no Options class, and its values reach generate as sent.
    assert Toy.capabilities.options_model is None and "explode" in Toy.capabilities.options
    report = check_backend(Toy(), failing_request=FAILING)
    assert report.passed == list(CHECKS) and not report.skipped and not report.failed
    assert "16 passed, 0 skipped, 0 failed" in str(report)


def test_kit_passes_the_installed_example_plugin(example_plugin):
    backend = Registry(default_plugins=()).get("example-fractal")
    report = check_backend(
        backend,
        prompt="a red fox",
        steps=6,
        width=64,
        height=64,
    )
    # Its options are typed (FractalOptions): every valid request runs, so there is no
    # failing request to give and only the failure check is skipped, with the reason.
    img2img = ("image_to_image", "image_to_image_preview")  # it takes no input image
    assert report.passed == [name for name in CHECKS if name not in ("failure", *img2img)]
    assert "failing_request" in report.skipped["failure"]
    assert all(report.skipped[name] == "capabilities.image_to_image is False" for name in img2img)


@pytest.mark.slow  # a pytest or Gradio process of its own
def test_example_plugins_own_suite_runs_the_kit_as_pytest_tests(example_plugin):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "30 passed, 4 skipped" in result.stdout, result.stdout


def test_kit_passes_a_status_only_backend():
    report = check_backend(Waiter(), failing_request=WAITER_FAILING)
    assert report.skipped == {
        "cancel": "capabilities.step_events is False: check_cancel_at_start checks its cancel",
        "finish_early": "capabilities.finish_early is False",
        "image_to_image": "capabilities.image_to_image is False",
        "image_to_image_preview": "capabilities.image_to_image is False",
    }
    assert report.passed == [name for name in CHECKS if name not in report.skipped]


def test_kit_passes_the_stream_tests_waiting_backend():
    from toy_backends import WaitingBackend

    waits = [(Status("queued", position=1, queue_size=4, eta=2.0), 0.01)]
    waits += [(Status("loading"), 0.01), (Status("generating"), 0.01)]
    # WaitingBackend stands in for a service in the stream tests: it ignores seeds, batches
    # and models, so those checks are left to Waiter above.
    report = check_backend(WaitingBackend(waits), skip=("seed", "batch", "failure"))
    assert {"event_order", "steps", "status", "previews", "cancel_at_start", "stream"} <= set(
        report.passed
    )


def test_kit_passes_per_image_batch_previews():
    recording = run_backend(Toy("per-image"), num_images=2)
    check_previews(Toy(), recording=recording)
    assert [len(step.preview) for step in recording.steps] == [2] * 5
    assert "Step 1/5 [32x32x3, 32x32x3]" in recording.trace()
    check_stream(Toy("per-image"), num_images=2)


def test_kit_requests_stay_within_a_models_own_limits():
    class Turbo(Toy):
        def models(self):
            turbo = ModelDefaults(default_steps=2, steps_range=(1, 4), default_size=(48, 48))
            return [ModelInfo(id="turbo", defaults=turbo), ModelInfo(id="toy-1")]

    backend = Turbo()
    assert default_fields(backend)["steps"] == 4  # the default model is the turbo one
    assert default_fields(backend, "toy-1")["steps"] == 5
    report = check_backend(backend, failing_request=FAILING)
    assert report.passed == list(CHECKS)


def test_the_kit_sees_an_img2img_backend_that_ignores_the_input():
    from gradio_diffusion_preview.testing import check_image_to_image_preview

    assert check_image_to_image(Toy(), prompt="a") is None
    assert check_image_to_image_preview(Toy(), prompt="a") is None
    with pytest.raises(ConformanceError) as caught:
        check_image_to_image_preview(Toy("ignores-input"), prompt="a")
    assert "nearer it than its mirror image" in str(caught.value)
    assert "fix: start the run from the input image noised" in str(caught.value)
    with pytest.raises(ConformanceError) as caught:
        check_image_to_image(Toy("final-size"), prompt="a")
    assert "fails the image_to_image check" in str(caught.value)
    assert "32x48" in str(caught.value)  # the input's size, which the request asked for


def test_a_backend_a_step_ahead_of_the_kit_passes_and_one_further_behind_fails():
    """A backend whose steps run on a thread of their own may have finished a step while the
    signal was on its way (the kit read the step before, then sent it): two Steps after the
    signal keep the contract (seen on the diffusers backend with both cores busy: steps
    [3, 4] after a finish_early sent after Step 2); three do not."""
    assert check_cancel(Toy("two-steps-late")) is None
    assert check_finish_early(Toy("two-steps-late")) is None
    for check in (check_cancel, check_finish_early):
        with pytest.raises(ConformanceError) as error:
            check(Toy("three-steps-late"), steps=10)
        assert "at most two more Steps" in str(error.value) and "[3, 4, 5]" in str(error.value)


@pytest.mark.parametrize("fault", ["slow-cancel", "slow-finish", "one-step-late"])
def test_signals_are_judged_by_the_steps_run_after_them_not_by_seconds(fault):
    """A backend that runs one more step after a signal, or takes longer than a step time to
    stop (a cleanup, a final decode, a machine busy with other work), keeps the contract."""
    assert check_cancel(Toy(fault)) is None
    assert check_finish_early(Toy(fault)) is None
    recording = run_backend(Toy(fault), steps=6, signal="cancel", signal_after=2)
    ran_after = [e.step for e in recording.after_signal if isinstance(e, Step)]
    assert ran_after == ([3] if fault == "one-step-late" else []) and recording.ended


def test_a_run_that_ended_before_the_signal_landed_is_run_again_longer():
    """A backend whose generation runs ahead of the kit has finished a short run before it
    sees finish_early(); the check runs it again four times as long, and judges that run."""
    ahead = RunsAhead()
    assert check_finish_early(ahead) is None
    assert ahead.runs == [5, 20]
    assert check_cancel(ahead) is None  # it checks cancel before it yields Finished
    assert ahead.runs[2:] == [5]


def test_the_hang_ceiling_is_generous_and_grows_with_slow_steps():
    request = GenerationRequest(prompt="a fox", steps=3)
    caps = Toy.capabilities

    def recording(times):
        events = [Started(3, "toy-1", [1], 64, 64), Step(1, 3), Step(2, 3)]
        return Recording("toy", request, caps, events, times)

    assert hang_ceiling() == DEFAULT_HANG_CEILING == 30.0
    assert hang_ceiling(recording([0.0, 0.01, 0.02])) == 30.0
    assert hang_ceiling(recording([0.0, 2.0, 6.0])) == 40.0  # ten of its slowest step times


class Neighbour:
    """A thread of the test process that is not a backend's (a server, a cache writer): it
    writes a file whenever asked, and says when it has."""

    def __init__(self) -> None:
        self.path = Path(tempfile.gettempdir()) / f"neighbour-{os.getpid()}.txt"
        self.asked, self.written = threading.Event(), threading.Event()
        self.writes, self.closed = 0, False
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while self.asked.wait() and not self.closed:
            self.asked.clear()
            self.path.write_text("not the backend's")
            self.writes += 1
            self.written.set()

    def write_now(self) -> None:
        self.written.clear()
        self.asked.set()
        assert self.written.wait(60), "the neighbour thread did not write"

    def close(self) -> None:
        self.closed = True
        self.asked.set()
        self.thread.join()
        self.path.unlink(missing_ok=True)


class InBusyCompany(Toy):
    """A toy that keeps the contract while, at every step, another thread of the process
    writes a file (asked by the toy, so the write falls inside the run for certain)."""

    def __init__(self, neighbour: Neighbour) -> None:
        super().__init__()
        self.neighbour = neighbour

    def _preview(self, pixels, step):
        self.neighbour.write_now()
        return super()._preview(pixels, step)


def test_files_written_by_other_threads_during_a_run_are_not_the_backends():
    neighbour = Neighbour()
    try:
        assert check_no_files(InBusyCompany(neighbour)) is None
        assert neighbour.writes == 10  # at each of five steps under generate() and stream()
    finally:
        neighbour.close()


def test_the_temporary_folders_first_probe_is_not_the_backends_write(monkeypatch):
    """Python's tempfile writes a probe file the first time a process asks for the temporary
    folder; torch asks on a diffusers backend's first run (importing torch._dynamo)."""

    class AsksForTheTemporaryFolder(Toy):
        def _preview(self, pixels, step):
            tempfile.gettempdir()
            return super()._preview(pixels, step)

    monkeypatch.setattr(tempfile, "tempdir", None)  # as in a process that never asked yet
    assert check_no_files(AsksForTheTemporaryFolder()) is None


@pytest.mark.slow  # a pytest or Gradio process of its own
def test_the_http_example_passes_the_kit_against_a_server_its_fixture_starts():
    """examples/http-image-service, the plugin guide's backend without previews, runs its own
    tests: the kit as pytest tests against an image service on a free loopback port."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(HTTP_EXAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "29 passed, 6 skipped" in result.stdout, result.stdout
    assert "SKIPPED [2] " in result.stdout and "check_cancel_at_start checks its cancel" in (
        result.stdout
    )


BUILTIN_BACKENDS = sorted(Registry(load_entry_points=False).backends())
BUILTIN_KIT = {
    # backend id -> the one test (function or class) that runs the whole kit on it, with the
    # model or the service it needs
    "a1111": "test_a1111_conformance.py::TestA1111Conformance",
    "comfyui": "test_comfyui_conformance.py::test_the_comfyui_backend_passes_the_conformance_kit",
    "diffusers": "test_diffusers_backend.py::test_the_conformance_kit_passes_on_busy_cores",
    "gradio": "test_remote_gradio.py::test_the_backend_passes_the_conformance_kit",
    "hf-inference": "test_hf_inference.py::test_the_conformance_kit_passes",
    "ray": "test_ray.py::test_conformance_kit_passes_for_the_ray_backend",
}


def test_every_builtin_backend_has_a_conformance_test():
    assert BUILTIN_BACKENDS
    assert set(BUILTIN_BACKENDS) == set(BUILTIN_KIT)
    for where in BUILTIN_KIT.values():
        module, test = where.split("::")
        (path,) = (ROOT / "tests").rglob(module)  # tests/<concern>/.../module
        source = path.read_text()
        assert f"def {test}(" in source or f"class {test}(" in source, where


# --- and fails what breaks it ----------------------------------------------------------------


class Nameless(Toy):
    id = "my toy"


class Unsure(Toy):
    """A toy whose availability() breaks the contract in the named way."""

    def __init__(self, availability: str) -> None:
        super().__init__()
        self.broken_availability = availability

    def availability(self):
        if self.broken_availability == "raises":
            raise RuntimeError("no config file")
        if self.broken_availability == "dict":
            return {"state": "usable"}
        if self.broken_availability == "network":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))  # a free port nothing listens on
                port = sock.getsockname()[1]
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Availability()
        return Availability(state="offline")


class MisfitTurbo(Toy):
    def models(self):
        return [ModelInfo(id="turbo", defaults=ModelDefaults(steps_range=(1, 4)))]


class Unconfigured(Toy):
    def availability(self):
        return Availability(
            state="not_configured", message="Set TOY_URL to the toy service's address."
        )


def broken(check, backend, expected, seen, *, id, fix=None, shown=(), **fields):
    """A row of the table: ``check(backend, **fields)`` must fail with the named check (the
    function's name, "request" for ``run_backend``), ``expected`` and ``seen`` (a phrase, or
    phrases that must all be in it) in its message, the ``fix`` where given, and every phrase
    of ``shown`` somewhere in the error."""
    name = "request" if check is run_backend else check.__name__.removeprefix("check_")
    return pytest.param(check, backend, fields, name, expected, seen, fix, shown, id=id)


MALFORMED_STATUSES = [
    (Status("thinking"), "phase to be one of queued, loading, generating, fetching", "'thinking'"),
    (Status("queued", position=0), "position to be None or an int >= 1", "position=0"),
    (Status("queued", position=True), "position to be None or an int >= 1", "position=True"),
    (Status("queued", queue_size=-1), "queue_size to be None or an int >= 0", "-1"),
    (
        Status("queued", position=3, queue_size=2),
        "queue_size to be at least Status.position",
        "position=3, queue_size=2",
    ),
    (Status("generating", eta=math.nan), "eta to be None or a finite number", "eta=nan"),
    (Status("generating", eta=-2.0), "eta to be None or a finite number", "eta=-2.0"),
    (Status("loading", message=None), "message to be a str", "message=None"),
]
BROKEN_AVAILABILITY = [
    ("raises", "availability() to answer without raising", "RuntimeError: no config file"),
    ("dict", "availability() to return a gradio_diffusion_preview.Availability", "a dict"),
    ("silent", "an Availability that is not usable to say why", "state='offline'"),
    ("network", "availability() to make no network calls", "connect ('127.0.0.1', "),
]
REASON_FIX = "pick the reason that says what a caller can do"
RETRY_FIX = "pass the seconds the service asked to wait"

BROKEN = [
    # events in the wrong order, raised, or never ending
    broken(check_event_order, Toy("step-first"), "Started as the first event", "Step 1/5",
           id="step-before-started"),
    broken(check_event_order, Toy("step-after-finish"),
           "nothing after the first Finished or Failed",
           "Step 5/5 after Finished(1 image(s) 64x64", id="event-after-finished"),
    broken(check_event_order, Toy("raises"),
           "failures reported as a Failed(message, reason) event, never raised",
           "generate raised RuntimeError: CUDA error: device-side assert triggered "
           "(after Step 1/5 [32x32x3])", id="raises"),
    broken(check_failure, Toy("raises-on-failure"), "never raised",
           "generate raised ValueError: kaboom", failing_request=FAILING, id="raises-on-failure"),
    broken(check_event_order, Toy("hangs"), "each event within the time limit",
           "stopped producing events without returning", shown=["<no event within the time limit>"],
           timeout=0.5, id="hangs"),
    broken(check_event_order, Waiter("status-first"), "Started as the first event",
           "Status('queued', position=1, queue_size=1)",
           fix="yield Started before any Step or Status", id="status-before-started"),
    # cancel and finish early, judged by the steps run after the signal
    broken(check_cancel, Toy("ignores-cancel"),
           "at most two more Steps after cancel() (sent after Step 2",
           "at least 5 more: steps [3, 4, 5, 6, 7]", shown=["<cancel()>"], steps=10,
           fix="control.wait_cancelled(seconds)", id="ignores-cancel"),
    broken(check_cancel, Toy("finishes-after-cancel"), "a cancelled run to simply stop yielding",
           "Finished(", id="finishes-after-cancel"),
    broken(check_cancel, Toy("hangs-after-cancel"),
           "the generator to return after cancel() (a run that has not ended 0.2s after it "
           "counts as hung)", "no return 0.2s after it", cancel_timeout=0.2,
           fix="control.wait_cancelled(seconds)", id="hangs-after-cancel"),
    broken(check_finish_early, Toy("ignores-finish"),
           "at most two more Steps after finish_early() (sent after Step 2",
           "at least 5 more: steps [3, 4, 5, 6, 7]", fix="control.finish_requested",
           shown=["Step 7/20"], id="ignores-finish"),  # the 5-step run ran to its end: again
    broken(check_finish_early, RunsAhead("ignores-finish"),
           "at most two more Steps after finish_early() (sent after Step 2",
           "at least 5 more: steps [10, 15, 20, 25, 30]", shown=["Started(total_steps=50"],
           id="runs-ahead-ignores-finish"),
    broken(check_cancel_at_start, Waiter("blocks"),
           "the generator to return after cancel() (a run that has not ended 0.3s after it "
           "counts as hung)", "no return 0.3s after it", cancel_timeout=0.3,
           fix="control.wait_cancelled(seconds)", shown=["check control.cancelled once per step"],
           id="blocks-after-started"),
    broken(check_cancel_at_start, Waiter("ignores-cancel"),
           "at most one more Step or Status after cancel() (sent right after Started)",
           "4 more: Status('queued', position=2, queue_size=3, eta=0.5)",
           fix="control.cancelled", id="ignores-cancel-while-waiting"),
    broken(check_cancel_at_start, Waiter("fails-after-cancel"), "at most one more Step or Status",
           "Failed(remote_error: The request was cancelled.)", id="fails-after-cancel"),
    broken(check_cancel_at_start, Toy("ignores-cancel"),
           "at most one more Step or Status after cancel()",
           "Step 1/20 [32x32x3], Step 2/20 [32x32x3]", fix="control.wait_cancelled(seconds)",
           id="step-backend-ignores-cancel-at-start"),
    # steps, previews and images that are not what Started announced
    broken(check_steps, Toy("wrong-total"), "Started.total_steps to be the request's steps (4)",
           "total_steps=5", steps=4, id="wrong-total"),
    broken(check_steps, Waiter("fake-steps"), "step numbers that increase", "steps [2, 1]",
           id="status-only-backend-with-fake-steps"),
    broken(check_previews, Toy("preview-size"), "previews of 32x16 (Started.preview_size)",
           "Step 1: a 16x8 preview", width=64, height=32, id="preview-size"),
    broken(check_previews, Toy("float-preview"), "dtype uint8", "dtype float64",
           id="float-preview"),
    broken(check_previews, Toy("per-image-short"),
           "a list preview to hold one image per image of the batch: 2 (Started.num_images), "
           "each 32x16 (Started.preview_size)", "Step 1: a list of 1 (32x16)",
           fix="send one preview per image of the batch", num_images=2, width=64, height=32,
           id="batch-preview-too-short"),
    broken(check_previews, Toy("per-image-size"), "previews of 32x16 (Started.preview_size)",
           "Step 1, image 1: a 32x8 preview", num_images=2, width=64, height=32,
           id="batch-preview-size"),
    broken(check_final_images, Toy("final-size"), "final images of the requested 48x32",
           "image 0 is 24x16", width=48, height=32, id="final-size"),
    broken(check_batch, Toy("one-image"),
           "Finished.seeds to be the seeds Started announced ([1234, 1235])", "[1234]",
           id="one-image-of-two"),
    broken(check_seed, Toy("ignores-seed"), "seed 1234 to give the same image twice",
           "images that differ", id="ignores-seed"),
    # files
    broken(check_no_files, Toy("preview-file"), "a run of generate() to write no files",
           str(Path(tempfile.gettempdir()) / f"toy-preview-{os.getpid()}-1.png"),
           id="preview-file"),
    broken(check_no_files, Toy("preview-file-on-a-thread"),
           "a run of generate() to write no files",
           str(Path(tempfile.gettempdir()) / f"toy-preview-{os.getpid()}-1.png"),
           id="preview-file-from-a-thread-the-run-starts"),
    # Status events and failures
    *(
        broken(check_status, Waiter(statuses=[Status("queued", position=1, queue_size=1), bad]),
               expected, ("Status #2: ", seen), id=f"status-{i}")
        for i, (bad, expected, seen) in enumerate(MALFORMED_STATUSES)
    ),
    broken(check_failure, Waiter("unknown-reason"), "Failed.reason to be one of invalid_request, ",
           "'quota_exceeded'", fix=REASON_FIX, failing_request=WAITER_FAILING,
           id="unknown-reason"),
    broken(check_failure, Waiter("negative-retry"),
           "Failed.retry_after to be None or a finite number", "-1.0", fix=RETRY_FIX,
           failing_request=WAITER_FAILING, id="negative-retry-after"),
    broken(check_failure, Waiter("endless-retry"),
           "Failed.retry_after to be None or a finite number", "inf", fix=RETRY_FIX,
           failing_request=WAITER_FAILING, id="endless-retry-after"),
    # identity, availability and model defaults
    broken(check_identity, Nameless(), "", "'my toy'", id="id-with-a-space"),
    *(
        broken(check_identity, Unsure(how), expected, seen, id=f"availability-{how}")
        for how, expected, seen in BROKEN_AVAILABILITY
    ),
    broken(check_identity, MisfitTurbo(),
           "model 'turbo''s defaults to fit the backend's capabilities",
           "default_steps 5 is outside (1, 4)", fix="a steps_range with a default_steps inside it",
           id="model-defaults-that-do-not-fit"),
    broken(run_backend, MisfitTurbo(), "capabilities_for(model)",
           "default_steps 5 is outside (1, 4)", model="turbo", id="run-a-misfit-model"),
    broken(run_backend, Unconfigured(), "the backend to be usable for the kit's runs",
           "unavailable: Set TOY_URL to the toy service's address.",
           fix="configure the backend in the test", id="cannot-run-here"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "backend", "fields", "name", "expected", "seen", "fix", "shown"), BROKEN
)
def test_a_backend_that_breaks_the_contract_fails_the_check_with_what_it_saw(
    check, backend, fields, name, expected, seen, fix, shown
):
    try:
        with pytest.raises(ConformanceError) as error:
            check(backend, **fields)
    finally:
        backend.release.set()  # a hanging run may end now
    expect(error, name, expected, seen, backend=backend.id, fix=fix)
    assert all(phrase in str(error.value) for phrase in shown), str(error.value)


def test_check_backend_reports_every_failure_at_once():
    with pytest.raises(ConformanceError) as error:
        check_backend(Toy("preview-size", "final-size"), failing_request=FAILING)
    failed = {failure.check for failure in error.value.failures}
    assert {"previews", "final_images", "stream"} <= failed
    assert "cancel" not in failed and "event_order" not in failed
    message = str(error.value)
    assert message.startswith(
        f"Backend 'toy' fails the conformance check: expected every "
        f"check to pass; saw {len(failed)} failures"
    )
    assert all(str(failure) in message for failure in error.value.failures)
    assert set(error.value.report.failed) == failed and "cancel" in error.value.report.passed


def test_capabilities_refuse_a_default_outside_their_range():
    with pytest.raises(ValueError, match=r"default_steps 200 is outside \(1, 50\)"):
        Capabilities(default_steps=200, steps_range=(1, 50))


# --- what does not apply is skipped, with the reason -----------------------------------------


def test_checks_that_do_not_apply_say_why():
    class Minimal(Toy):
        capabilities = Capabilities(
            cancel=False,
            finish_early=False,
            seed=False,
            max_batch=1,
            guidance=False,
            negative_prompt=False,
            min_size=16,
        )

    backend = Minimal()
    assert check_cancel(backend) == "capabilities.cancel is False"
    assert check_finish_early(backend) == "capabilities.finish_early is False"
    assert check_seed(backend) == "capabilities.seed is False"
    assert check_batch(backend) == "capabilities.max_batch is 1"
    assert "failing_request" in check_failure(backend)
    assert check_cancel_at_start(backend) == "capabilities.cancel is False"
    report = check_backend(backend)
    assert set(report.skipped) == {
        "cancel",
        "cancel_at_start",
        "finish_early",
        "seed",
        "batch",
        "failure",
        "image_to_image",
        "image_to_image_preview",
    }


def test_a_failing_request_that_validation_rejects_is_a_usage_error():
    with pytest.raises(
        ValueError, match="rejected by validation before it reaches backend 'toy'.*num_images"
    ):
        check_failure(Toy(), failing_request={"num_images": 9})


def test_the_stream_check_and_the_recording_are_usable_on_their_own():
    assert check_stream(Toy(), num_images=2) is None
    recording = run_backend(Toy(), steps=3, signal="finish_early", signal_after=1)
    assert recording.finished.early and [s.step for s in recording.steps] == [1]
    assert recording.trace().startswith("Started(total_steps=3, 64x64, seeds=[1234]")
