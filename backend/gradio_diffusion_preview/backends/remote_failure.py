"""What the remote backends (a1111, comfyui, remote_gradio) share about a failed call to their
service: ``RemoteFailure``, the exception that carries the message for people and the failure
reason for code. (``endpoints.public_url`` makes an address fit to name in such a message.)

Nothing here imports an HTTP client: it is imported by backends whose own clients load lazily.
"""

from __future__ import annotations

from ..events import Failed, FailureReason


class RemoteFailure(Exception):
    """A call to a remote service failed; ``str()`` (and ``message``) is for people, ``reason``
    for code, ``retry_after`` the seconds the service asked us to wait, ``status`` its HTTP
    status when it answered with an error status."""

    def __init__(
        self,
        message: str,
        reason: FailureReason,
        retry_after: float | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason: FailureReason = reason
        self.retry_after = retry_after
        self.status = status

    def as_failed(self) -> Failed:
        """The run's ``Failed`` event for this failure."""
        return Failed(self.message, self.reason, self.retry_after)
