"""One run on the app's own pipeline (``PipelineBackend``): ``PipelineRun`` with the pipeline
handed over instead of loaded, its current scheduler as the base, the author's call arguments
passed through, and per-request LoRA adapter weights set for the run and put back after it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cpu_threads import apply_for
from .run import PipelineRun

if TYPE_CHECKING:
    from ...control import RunControl
    from ...request import GenerationRequest
    from .app_pipeline import PipelineBackend
    from .backend import RunOptions
    from .loading import LoadedPipeline


class AppPipelineRun(PipelineRun):
    """Runs one request on ``backend.pipe``. Iterate ``events()`` exactly once."""

    def __init__(
        self,
        backend: PipelineBackend,
        request: GenerationRequest,
        control: RunControl,
        options: RunOptions,
        call_args: dict[str, Any],
        adapters: dict[str, float] | None,
    ) -> None:
        super().__init__(backend, request, control, options)
        self.call_args = call_args
        self.adapters = adapters

    def _load(self) -> LoadedPipeline:
        entry = self.backend.entry()
        apply_for(entry.device, self.backend.cpu_thread_choice())
        return entry

    def _generate(self, entry: LoadedPipeline) -> None:
        # Under the entry's lock: the scheduler the app set last is this run's base.
        entry.base_scheduler = entry.pipe.scheduler
        if not self.adapters:
            return super()._generate(entry)
        pipe = entry.pipe
        before = list(pipe.get_active_adapters())
        pipe.set_adapters(list(self.adapters), list(self.adapters.values()))
        try:
            super()._generate(entry)
        finally:
            if before:
                pipe.set_adapters(before)
            else:
                pipe.disable_lora()

    def _call_arguments(
        self, entry: LoadedPipeline, seeds: list[int], width: int, height: int
    ) -> dict[str, Any]:
        return {**self.call_args, **super()._call_arguments(entry, seeds, width, height)}
