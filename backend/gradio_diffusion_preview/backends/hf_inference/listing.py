"""The models the backend offers: the configured list (the curated catalogue by default), or,
when online, the Hub's live list of text-to-image models served by Inference Providers (with
the configured editing models, which the Hub serves for image-to-image).

The live list comes from ``HfApi.list_models(pipeline_tag="text-to-image", inference_provider=
..., expand=["inferenceProviderMapping"])`` on a daemon thread, so a slow Hub never holds a
caller longer than ``list_timeout``; it is reused for ``live_seconds``. Configured entries give
live models their names, defaults and order; a configured model no provider serves any more is
left out (it could only fail). Offline, or while the Hub fails, the last good live list or the
configured one is used, with the reason kept in ``source`` for the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from pydantic import SecretStr

from ...backend import ModelInfo
from .settings import HF_ROUTE, TEXT_TO_IMAGE_PROVIDERS, HfModel, InferenceSettings
from .tokens import redact, resolve_token

log = logging.getLogger(__name__)
RETRY_FAILED_SECONDS = 60.0
"""After a failed live listing, how long the configured list is used before asking again."""


@dataclass(frozen=True)
class LiveModel:
    """A model the Hub lists as served for text-to-image, and by whom."""

    id: str
    providers: tuple[str, ...]


def offline() -> bool:
    """huggingface_hub's own offline switch (``HF_HUB_OFFLINE``), which blocks its requests."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


class ModelListing:
    """The offered models, and the configured entry behind each (for routing)."""

    def __init__(self, settings: InferenceSettings, token: SecretStr | None) -> None:
        from .catalogue import CATALOGUE

        self.settings = settings
        self._token = token
        self._configured = list(settings.models if settings.models is not None else CATALOGUE)
        self._kind = "configured" if settings.models is not None else "catalogue"
        self._lock = threading.Lock()
        self._live: tuple[float, list[HfModel]] | None = None
        self._failed: tuple[float, str] | None = None
        self._fetching: threading.Thread | None = None
        self._source = f"{self._kind} (the Hub not asked yet)"

    @property
    def source(self) -> str:
        """Where the offered models come from, and why, for the CLI and ``describe()``."""
        if not self.settings.lists_live:
            return self._kind
        if offline():
            return f"{self._kind} (offline: HF_HUB_OFFLINE is set)"
        return self._source

    def entry(self, model_id: str) -> HfModel | None:
        """The configured (or live-listed) entry for ``model_id``."""
        with self._lock:
            live = self._live[1] if self._live else []
        return next((m for m in [*self._configured, *live] if m.id == model_id), None)

    def models(self) -> list[ModelInfo]:
        return [model.info() for model in self._offered()]

    def _offered(self) -> list[HfModel]:
        if not self.settings.lists_live:
            return self._configured
        if offline():
            return self._fallback()
        now = time.monotonic()
        with self._lock:  # not held while falling back: _fallback takes it too
            if self._live and now - self._live[0] < self.settings.live_seconds:
                return self._live[1]
            failed = self._failed
            if failed is None or now - failed[0] >= RETRY_FAILED_SECONDS:
                failed = None
                thread = self._fetching
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=self._fetch, name="gdp-hf-inference-listing", daemon=True
                    )
                    self._fetching = thread
                    thread.start()
        if failed is not None:
            return self._fallback(f"live listing failed: {failed[1]}")
        thread.join(self.settings.list_timeout)
        with self._lock:
            if self._live and self._live[0] >= now:
                return self._live[1]
            if thread.is_alive():
                self._failed = (now, f"the Hub took over {self.settings.list_timeout:g} s")
            reason = self._failed[1] if self._failed else "no answer"
        return self._fallback(f"live listing failed: {reason}")

    def _fallback(self, why: str | None = None) -> list[HfModel]:
        """The last good live list, else the configured one; ``source`` says which and why."""
        with self._lock:
            if self._live:
                if why:
                    age = time.monotonic() - self._live[0]
                    self._source = f"live, from {age:.0f} s ago ({why})"
                return self._live[1]
            if why:
                self._source = f"{self._kind} ({why})"
        return self._configured

    def _fetch(self) -> None:
        token = None
        try:
            token = resolve_token(self._token)
            live = fetch_live(self.settings, token)
        except Exception as error:
            reason = redact(f"{type(error).__name__}: {error}", token)[:200]
            log.warning("hf-inference: listing the Hub's models failed: %s", reason)
            with self._lock:
                self._failed = (time.monotonic(), reason)
            return
        offered = merge(self._configured, live, editing=self.settings.router_url is None)
        with self._lock:
            self._live, self._failed = (time.monotonic(), offered), None
            self._source = f"live (the Hub lists {len(offered)} served models)"


def fetch_live(settings: InferenceSettings, token: str | None) -> list[LiveModel]:
    """The Hub's text-to-image models served by the settings' provider (or any), in the Hub's
    trending order."""
    from huggingface_hub import HfApi

    wanted = HF_ROUTE if settings.router_url else settings.provider
    listed = HfApi(endpoint=settings.hub_url, token=token).list_models(
        pipeline_tag="text-to-image",
        inference_provider="all" if wanted == "auto" else wanted,
        expand=["inferenceProviderMapping"],
        sort="trending_score",
        limit=settings.live_limit,
    )
    found = []
    for model in listed:
        providers = tuple(
            mapping.provider
            for mapping in model.inference_provider_mapping or ()
            if mapping.task == "text-to-image"
            and mapping.status == "live"
            and mapping.provider in TEXT_TO_IMAGE_PROVIDERS
            and wanted in ("auto", mapping.provider)
        )
        if providers:
            found.append(LiveModel(model.id, providers))
    return found


def merge(configured: list[HfModel], live: list[LiveModel], editing: bool = True) -> list[HfModel]:
    """Configured entries that are served (or have their own endpoint URL), in their order,
    then the other live models; each says who serves it. The live list is of text-to-image
    models: configured editing models (image-to-image) are kept as configured."""
    served = {model.id: model.providers for model in live}
    offered = []
    for entry in configured:
        providers = served.get(entry.id, ())
        if entry.url or (providers and entry.provider in (None, "auto", *providers)):
            offered.append(_served_by(entry, providers))
        elif editing and takes_image(entry):  # served for image-to-image: not listed here
            offered.append(entry)
    known = {entry.id for entry in configured}
    offered += [_served_by(HfModel(id=m.id), m.providers) for m in live if m.id not in known]
    return offered


def takes_image(entry: HfModel) -> bool:
    """True for an editing entry (its defaults say image_to_image or instruction_editing)."""
    defaults = entry.defaults
    return bool(defaults and (defaults.image_to_image or defaults.instruction_editing))


def _served_by(entry: HfModel, providers: tuple[str, ...]) -> HfModel:
    if not providers:
        return entry
    note = f"Served by {', '.join(providers)}."
    return entry.model_copy(update={"description": f"{entry.description} {note}".strip()})
