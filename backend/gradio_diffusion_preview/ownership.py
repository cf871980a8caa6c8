"""Run ownership: a run started inside a Gradio event belongs to that browser session.

``stream`` records the Gradio session (``gr.Request.session_hash``) of the event that started a
run. The component's Stop and "Use this preview" handlers pass the caller's session, so they act
only on the caller's own runs; for anyone else's run id (or one that does not exist) they do
nothing and say nothing, so they cannot be used to stop other people's runs or to probe which
runs exist. The app's own code keeps ``cancel_run(run_id)`` without a session, for any run.
"""

from __future__ import annotations

from typing import Any


def current_session() -> str | None:
    """The session hash of the Gradio event running this code, or None outside one (or
    without gradio installed)."""
    try:
        from gradio.context import LocalContext
    except ImportError:
        return None
    request = LocalContext.request.get(None)
    return session_of(request)


def session_of(request: Any) -> str | None:
    """A ``gr.Request``'s session hash, or None when it has none."""
    session = getattr(request, "session_hash", None)
    return session if isinstance(session, str) and session else None
