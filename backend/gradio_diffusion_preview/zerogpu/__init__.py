"""Running a local backend on a Hugging Face ZeroGPU Space (docs/deploy-zerogpu.md).

    import spaces  # first, before torch
    from gradio_diffusion_preview import on_zerogpu

    on_zerogpu("diffusers", duration=30, preload=["stabilityai/sd-turbo"])
    # catalogue entries then name the backend "diffusers-zerogpu"

``backend`` (the app's side of a run), ``worker`` (the GPU worker's side) and ``signals`` (Stop
and "finish early" across the two processes).
"""

from __future__ import annotations

from .backend import GPU_DURATION, ZeroGPUBackend, on_zerogpu

__all__ = ["GPU_DURATION", "ZeroGPUBackend", "on_zerogpu"]
