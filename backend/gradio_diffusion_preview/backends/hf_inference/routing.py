"""Which provider "auto" calls: the first live provider the installed huggingface_hub can call.

huggingface_hub's own "auto" takes the first provider of the model's mapping on the Hub, even
one it cannot call (SDXL base's mapping has started with nebius, which huggingface_hub 2.4 does
not support), one in ``staging`` (for the provider's tests) or one whose health check failed:
the run then ends as "model not found" while another listed provider serves the model. Here the
mapping is read in the Hub's order (the token owner's preference order when the token is sent),
and the first entry that is live, for the run's task (text-to-image, or image-to-image for an
edit) and callable by this huggingface_hub is
chosen; the others before it are reported with why they were skipped.

The mapping comes from huggingface_hub's own cached look-up (``_fetch_inference_provider_mapping``,
the one its provider helpers use next), so choosing costs no second request; ``forget`` drops
that cache when a provider answers 404/410 (it left the model's mapping).
"""

from __future__ import annotations

from dataclasses import dataclass

TASK = "text-to-image"


class NoProvider(LookupError):
    """No provider in the model's mapping can be called; ``skipped`` says why for each."""

    def __init__(self, model: str, skipped: tuple[str, ...]) -> None:
        self.model, self.skipped = model, skipped
        listed = "; ".join(skipped) or "the Hub lists no provider for it"
        super().__init__(f"no provider this app can call serves it ({listed})")


@dataclass(frozen=True)
class Route:
    """The provider chosen, and each one skipped before it with why."""

    provider: str
    skipped: tuple[str, ...] = ()


def choose(model: str, task: str = TASK) -> Route:
    """The first live provider of ``model``'s mapping that huggingface_hub can call for
    ``task`` (``text-to-image`` or ``image-to-image``; a network call, once per model while
    cached); raises ``NoProvider``."""
    import huggingface_hub
    from huggingface_hub.inference._providers import PROVIDERS
    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

    skipped = []
    for mapping in _fetch_inference_provider_mapping(model):
        name = mapping.provider
        if task not in PROVIDERS.get(name, {}):
            why = f"huggingface_hub {huggingface_hub.__version__} cannot call it for {task}"
        elif mapping.task != task:
            why = f"it serves the model for {mapping.task}"
        elif mapping.status != "live":
            why = (
                "it is in staging, for the provider's own tests"
                if mapping.status == "staging"
                else f"its latest health check failed (status {mapping.status})"
            )
        else:
            return Route(name, tuple(skipped))
        skipped.append(f"skipped {name}: {why}")
    raise NoProvider(model, tuple(skipped))


def forget(model: str) -> None:
    """Drop the cached provider mappings (huggingface_hub caches them for the process), so the
    next call asks the Hub again."""
    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

    _fetch_inference_provider_mapping.cache_clear()
