"""Pipelines with only the older ``callback`` that the backend cannot serve are refused with the
reason (PixArt, which it can, runs in the family tests). Kandinsky 2.1's combined pipeline: its
prior stage takes no callback at all, so a Stop there would wait for the whole prior."""

from __future__ import annotations

import inspect

import pytest

pytestmark = pytest.mark.slow


def test_a_combined_pipeline_whose_prior_takes_no_callback_is_refused():
    from diffusers import KandinskyCombinedPipeline, VQModel

    from gradio_diffusion_preview.backends.diffusers.loading import legacy_refusal

    # The real class, with only the decoder's movq (its __init__ reads the movq's scale); the
    # other components play no part in what is judged: which callbacks its __call__ takes and
    # that it runs a prior stage first.
    names = [name for name in inspect.signature(KandinskyCombinedPipeline.__init__).parameters]
    components = {name: None for name in names if name != "self"}
    components["movq"] = VQModel(block_out_channels=[8], norm_num_groups=8, latent_channels=4)
    pipe = KandinskyCombinedPipeline(**components)
    parameters = frozenset(inspect.signature(pipe.__call__).parameters)

    assert "callback_on_step_end" not in parameters and "callback" in parameters
    why = legacy_refusal(pipe, parameters)
    assert why is not None and "its prior stage takes no callback" in why
