"""A ZeroGPU Space in this process, for tests: the real ``spaces`` package (its ``@spaces.GPU``
wrapper forks the worker, pickles arguments and yielded values, sets its stop event) with only
what needs Hugging Face's infrastructure replaced: the scheduler client (``schedule``,
``allow``, ``release``, ``startup_report``: no device API here). ``import`` it in a process of
its own, as its first import, before anything imports torch.

``SCHEDULED`` records each lease the stub scheduler granted: the visitor's session (from the
request ``spaces`` passed on) and the seconds asked for. The stub hands leases out on two GPUs in
turn, so consecutive runs go to different forked workers. A session named ``broke`` has no GPU
quota left: its leases are refused as ZeroGPU refuses them.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

os.environ["SPACES_ZERO_GPU"] = "1"
os.environ["SPACES_ZERO_DEVICE_API_URL"] = "http://zerogpu.invalid"  # never called

import sys  # noqa: E402

# spaces' torch patching needs a CUDA build of torch; this machine has the CPU build. The toy
# backends need no torch, so spaces is imported as in a Space without torch (its torch steps are
# then its own no-ops), and torch is importable again afterwards.
_torch = sys.modules.get("torch")
sys.modules["torch"] = None  # type: ignore[assignment]
try:
    import spaces  # noqa: E402
    import spaces.zero.client as zerogpu_client  # noqa: E402
finally:
    if _torch is None:
        del sys.modules["torch"]
    else:
        sys.modules["torch"] = _torch
from spaces.zero.api import ScheduleResponse  # noqa: E402
from spaces.zero.gradio import error as zerogpu_error  # noqa: E402
from support.toy_backends import CountingBackend  # noqa: E402

GPUS = 2
SCHEDULED: list[dict] = []
_scheduled_lock = threading.Lock()


def _schedule(task_id, request=None, duration=None, gpu_size=None, _first_attempt=True):
    session = getattr(request, "session_hash", None)
    if session == "broke":
        raise zerogpu_error(
            "ZeroGPU quota exceeded",
            "You have exceeded your GPU quota (60s requested vs. 0s left). Try again in 0:10:00",
        )
    with _scheduled_lock:
        index = len(SCHEDULED) % GPUS
        SCHEDULED.append(
            {"session": session, "seconds": duration.seconds if duration else None, "gpu": index}
        )
    return ScheduleResponse(
        idle=True, nvidiaIndex=index, nvidiaUUID=f"GPU-stub-{index}", allowToken=f"t{index}"
    )


zerogpu_client.schedule = _schedule
zerogpu_client.allow = lambda allow_token: None
zerogpu_client.release = lambda allow_token, *, fail=False, allow_404=False: None
zerogpu_client.startup_report = lambda: None


class ProcessGate:
    """``toy_backends.Gate`` across processes: the backend in the forked worker waits before
    each step until the test (in the app's process) lets steps through. ``passed`` counts the
    steps let through, as the worker ran them. Made before any worker is forked."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._permits = context.Semaphore(0)
        self._open = context.RawValue("b", 0)
        self._passed = context.Value("i", 0)

    @property
    def passed(self) -> int:
        return self._passed.value

    def release(self, steps: int = 1) -> None:
        for _ in range(steps):
            self._permits.release()

    def open(self) -> None:
        self._open.value = 1
        self.release(1)

    def wait(self, control) -> bool:
        while True:
            if control.cancelled:
                return False
            if control.finish_requested or self._open.value or self._permits.acquire(True, 0.02):
                if control.cancelled:  # sent while this waited: the step is not run
                    return False
                with self._passed.get_lock():
                    self._passed.value += 1
                return True


def gated_backend() -> tuple[CountingBackend, ProcessGate]:
    gate = ProcessGate()
    return CountingBackend(gate=gate), gate


assert spaces.GPU is not None
