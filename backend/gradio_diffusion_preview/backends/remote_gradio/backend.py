"""RemoteGradioBackend: a remote Gradio app or Space as a backend, one per configured endpoint.

Against an app whose endpoint returns a ``DiffusionPreview`` (this project's demo, or any app
built on it, on another machine) every step's preview is relayed as it arrives; against any
other text-to-image app (an endpoint returning an image or a gallery, the common Space) the run
reports its queue position and progress, then the image. How to call the endpoint is detected
from the app's API description and can be set in ``Endpoint.options`` (see ``settings``).

Nothing here touches the network until a model listing or a run needs it: importing and
registering the backend, and ``availability()``, stay offline. gradio_client is imported then.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ...backend import Availability, Backend, Capabilities, ModelInfo
from ...endpoints import Endpoint, EndpointConfigError
from ...events import Failed
from ..remote_failure import RemoteFailure
from .failures import is_space
from .settings import GradioSettings, parse_settings

if TYPE_CHECKING:
    from ...control import RunControl
    from ...events import GenerationEvent
    from ...request import GenerationRequest
    from .connection import Session

DOCS = "docs/backends/remote-gradio.md"


class RemoteGradioBackend(Backend):
    """A remote Gradio app (a URL or a Space id) configured by an ``Endpoint`` of kind gradio.

    Raises ``EndpointConfigError`` when the endpoint's options are wrong.
    """

    location = "remote"

    def __init__(self, endpoint: Endpoint) -> None:
        self.settings: GradioSettings = parse_settings(endpoint)
        self.endpoint = endpoint
        self.id = endpoint.id
        self.display_name = endpoint.display_name or default_name(endpoint)
        self._lock = threading.Lock()
        self._session: Session | None = None
        # Until the app has been asked, claim nothing it may not do (no steps unless the mode
        # says so, no seed, guidance, negative prompt or batch).
        steps = self.settings.mode == "preview"
        try:
            self._configured = Capabilities(
                **{
                    "step_events": steps,
                    "step_previews": steps,
                    "negative_prompt": False,
                    "seed": False,
                    "guidance": False,
                    "max_batch": 1,
                    "finish_early": False,
                    **self.settings.capabilities,
                }
            )
        except ValueError as error:
            raise EndpointConfigError(
                f"Endpoint '{endpoint.id}': options.capabilities: {error}. Fix: give limits "
                f"and defaults that fit together (see {DOCS})."
            ) from None

    @property
    def capabilities(self) -> Capabilities:
        """What the endpoint allows: detected once the app has been asked (first listing or
        run), the configuration's until then. Reading it never touches the network."""
        session = self._session
        return session.api.capabilities if session is not None else self._configured

    def availability(self) -> Availability:
        endpoint = self.endpoint
        if endpoint.token_env and not endpoint.secret_token():
            return Availability(
                state="needs_token",
                message=f"Backend '{self.id}' reads its token from ${endpoint.token_env}, which "
                f"is not set. Fix: set {endpoint.token_env} (a Hugging Face token for a Space).",
            )
        if endpoint.username and not endpoint.secret_password():
            source = f"${endpoint.password_env}" if endpoint.password_env else "password"
            return Availability(
                state="not_configured",
                message=f"Backend '{self.id}' logs in as '{endpoint.username}' but its "
                f"{source} is not set. Fix: set the password too (see {DOCS}).",
            )
        return Availability()

    def session(self) -> Session:
        """The connected client and API of this endpoint, made on first use and then shared by
        every run (one client per endpoint); raises ``RemoteFailure``."""
        with self._lock:
            if self._session is None:
                from .connection import connect  # gradio_client and httpx load here

                self._session = connect(self.endpoint, self.settings)
            return self._session

    def forget_session(self, session: Session | None = None) -> None:
        """Drop the connection (the app went away or changed), so the next run reconnects."""
        with self._lock:
            if self._session is None or (session is not None and self._session is not session):
                return
            old, self._session = self._session, None
        old.close()
        self.forget_models()

    def models(self) -> Sequence[ModelInfo]:
        if self.endpoint.models:
            return [ModelInfo(id=model) for model in self.endpoint.models]
        return list(self.session().api.models)

    def capabilities_for(self, model: str | None) -> Capabilities:
        # The app's own limits, when it can be asked; if not, the run will say why and
        # validation goes by the configuration meanwhile.
        with contextlib.suppress(RemoteFailure):
            self.session()
        return super().capabilities_for(model)

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        from .run import RemoteRun

        yield from RemoteRun(self, request, control).events()

    def describe(self) -> dict:
        described = {**super().describe(), "endpoint": self.endpoint.public()}
        session = self._session
        if session is not None:
            described["remote_api"] = {"api_name": session.api.api_name, "mode": session.api.mode}
        return described


def default_name(endpoint: Endpoint) -> str:
    """The name people see: a Space by its id, an app by its backend id, never its address."""
    if is_space(endpoint.url):
        return f"Space {endpoint.url}"
    return "Remote Gradio app" if endpoint.id == "gradio" else f"Remote Gradio app ({endpoint.id})"


class UnconfiguredGradioBackend(Backend):
    """Stands in for the gradio backend when no endpoint is configured, or one is configured
    wrongly: listed, never usable, with a message saying how to configure it."""

    display_name = "Remote Gradio app (not configured)"
    location = "remote"
    capabilities = Capabilities(step_events=False, step_previews=False)

    def __init__(self, backend_id: str = "gradio", problem: str | None = None) -> None:
        self.id = backend_id
        self.problem = problem

    def availability(self) -> Availability:
        if self.problem:
            return Availability(state="not_configured", message=self.problem)
        return Availability(
            state="not_configured",
            message="No remote Gradio app is configured. Fix: set DIFFUSION_PREVIEW_GRADIO_URL "
            "to the app's address (http://host:7860) or a Space id (owner/name), with "
            "DIFFUSION_PREVIEW_GRADIO_TOKEN for a private Space; or add an endpoint with "
            'kind = "gradio" to the file named by DIFFUSION_PREVIEW_ENDPOINTS; or register a '
            f"RemoteGradioBackend(Endpoint(...)) in code. See {DOCS}.",
        )

    def generate(
        self, request: GenerationRequest, control: RunControl
    ) -> Iterator[GenerationEvent]:
        yield Failed(self.availability().message, "unavailable")
