"""ZeroGPUBackend: any local backend, its generation run inside ``@spaces.GPU``.

On a ZeroGPU Space the GPU exists only inside a function decorated with ``@spaces.GPU``, which
runs in a worker process forked from the app's. This backend keeps everything about a run in the
app's process (the run engine's handle and registry, its owner, the policy's limits and fair
queue, the Compare tab's runs) and sends only the hosted backend's ``generate`` to the GPU, as
the ``ray`` backend sends it to a replica: each run calls the decorated function, which streams
the hosted backend's events back in wire form (``serving.wire``). Stop and "finish early" travel
through the run's slot in shared memory (``signals``), so they reach the worker within a step;
closing the run also closes the decorated generator, which sets the wrapper's own stop event.

The GPU lease of a run lasts ``duration`` seconds, or the ``gpu_duration`` option of its
catalogue entry (``CatalogueEntry(options={"gpu_duration": 30})``): ZeroGPU schedules short
leases sooner. A refusal from ZeroGPU (the visitor's GPU quota spent, no GPU free) ends the run
as an error with ZeroGPU's message. Off ZeroGPU (``SPACES_ZERO_GPU`` unset, e.g. on a laptop)
``spaces.GPU`` leaves the function as it is, and the run works in the app's process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..backend import Availability, Backend, Capabilities, ModelInfo
from ..events import Failed, GenerationEvent
from ..request import GenerationRequest
from ..typed_options import Options
from .signals import SlotsExhausted, run_signals
from .worker import HOSTED, gpu_task

if TYPE_CHECKING:
    from ..control import RunControl

GPU_DURATION = "gpu_duration"
"""The request option (set by a catalogue entry) for the GPU lease of a run, in seconds."""
INSTALL_HINT = "pip install spaces"


class ZeroGPUBackend(Backend):
    """``hosted``'s models, capabilities and availability, its runs on a ZeroGPU worker."""

    location = "local"

    def __init__(
        self,
        hosted: Backend,
        *,
        id: str | None = None,
        duration: float = 60,
        size: str | None = None,
    ) -> None:
        """
        Parameters:
            hosted: the local backend whose generation needs the GPU (e.g. ``diffusers``).
            id: this backend's id (default ``<hosted id>-zerogpu``), as catalogue entries name
                it.
            duration: seconds of GPU a run asks for, unless its entry's ``gpu_duration`` says.
            size: ZeroGPU's GPU size (``"large"`` or ``"xlarge"``; default: ZeroGPU's).
        """
        if duration <= 0:
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
        self.hosted = hosted
        self.id = id or f"{hosted.id}-zerogpu"
        self.display_name = f"{hosted.display_name} (ZeroGPU)"
        self.duration = duration
        self.size = size
        self._task: Any = None
        self._task_lock = threading.Lock()
        run_signals()  # before any worker is forked, so that every worker has it
        HOSTED[self.id] = hosted

    @property
    def capabilities(self) -> Capabilities:
        hosted = self.hosted.capabilities
        described = "Seconds of GPU a run asks ZeroGPU for (set by the app's catalogue)."
        if hosted.options_model is not None:  # typed: the hosted options plus the duration
            return hosted.with_options(with_gpu_duration(hosted.options_model, described))
        return hosted.model_copy(update={"options": {**hosted.options, GPU_DURATION: described}})

    def availability(self) -> Availability:
        try:
            import spaces  # noqa: F401
        except ImportError:
            return Availability(
                state="unavailable",
                message=f"Running on ZeroGPU needs the spaces package. Fix: {INSTALL_HINT}",
            )
        return self.hosted.availability()

    def models(self) -> Sequence[ModelInfo]:
        return self.hosted.list_models()

    def default_model(self) -> str | None:
        return self.hosted.default_model()

    def model_info(self, model: str) -> ModelInfo | None:
        return self.hosted.model_info(model)

    def describe(self) -> dict:
        described = super().describe()
        described["hosts"] = self.hosted.id
        described["gpu_duration"] = self.duration
        return described

    def _gpu(self) -> Any:
        """The decorated generator function, made on first use."""
        with self._task_lock:
            if self._task is None:
                import spaces

                self._task = gpu_task(spaces.GPU, _lease, self.size)
            return self._task

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        options = dict(request.options)
        seconds = options.pop(GPU_DURATION, self.duration)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            yield Failed(
                f"The option {GPU_DURATION} must be a positive number of seconds, got "
                f"{seconds!r}. Fix: set it in the catalogue entry, e.g. 30.",
                "invalid_request",
            )
            return
        signals = run_signals()
        try:
            slot = signals.take()
        except SlotsExhausted as error:
            yield Failed(f"Too many runs at once ({error}). Fix: try again shortly.", "busy")
            return
        unwatch = control.watch(lambda: signals.send(slot, control))
        hosted_request = request.model_copy(update={"options": options})
        stream: Any = None
        try:
            from ..serving.wire import from_wire

            stream = self._gpu()(self.id, hosted_request.model_dump(), slot, float(seconds))
            for item in stream:
                if control.cancelled:
                    return
                yield from_wire(item)
        except Exception as error:  # ZeroGPU's refusal (quota, no GPU) or a worker that died
            if not control.cancelled:
                yield _refusal(error)
        finally:
            if stream is not None:
                stream.close()  # sets the worker's stop event; waits until it has stopped
            unwatch()
            signals.give_back(slot)


def _lease(key: str, request: dict[str, Any], slot: int, seconds: float) -> float:
    """The GPU duration ``spaces.GPU`` asks for: the run's own (``gpu_task``'s last argument)."""
    return seconds


def _refusal(error: BaseException) -> Failed:
    """ZeroGPU's refusal (a ``gradio.Error`` from the ``spaces`` wrapper) as a failed run."""
    message = str(getattr(error, "message", None) or error).strip()
    lowered = message.lower()
    if "quota" in lowered:
        reason = "rate_limited"
    elif "no gpu" in lowered:
        reason = "busy"
    elif "aborted" in lowered:
        reason = "backend_error"
    else:
        reason = "unavailable"
    return Failed(f"ZeroGPU did not run this request: {message}", reason)


def on_zerogpu(
    backend: str | Backend,
    *,
    duration: float = 60,
    size: str | None = None,
    preload: Sequence[str] = (),
    id: str | None = None,
    registry: Any = None,
) -> ZeroGPUBackend:
    """Run ``backend`` (a registered id, e.g. ``"diffusers"``, or a ``Backend``) on ZeroGPU:
    register a backend ``<id>-zerogpu`` (or ``id``) whose runs ask ZeroGPU for ``duration``
    seconds of GPU (``gpu_duration`` of a catalogue entry wins), and load the ``preload`` models
    now, in the app's process, so every GPU worker starts with them. Call it once at startup,
    after ``import spaces`` and before the app launches. Returns the registered backend."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    hosted = registry.get(backend) if isinstance(backend, str) else backend
    zero = ZeroGPUBackend(hosted, id=id, duration=duration, size=size)
    for model in preload:
        load = getattr(hosted, "load", None)
        if load is None:
            raise ValueError(
                f"Backend '{hosted.id}' cannot load a model ahead of its runs (it has no "
                "load method). Fix: leave out preload."
            )
        load(model)
    name = f"zerogpu:{zero.id}"
    if name in registry.plugins:  # called again (a reloaded app): the new one replaces it
        registry.remove_plugin(name)
    registry.add_backends(zero, name=name)
    return zero


def with_gpu_duration(options: type[Options], described: str) -> type[Options]:
    """``options`` with the ZeroGPU duration option (seconds, set by the app's catalogue)."""
    from pydantic import Field, create_model

    field = Field(None, gt=0, description=described)
    return create_model(options.__name__, __base__=options, **{GPU_DURATION: (float | None, field)})
