"""The final state of a ``gradio_client`` job, whether its run succeeded or failed.

A failed run ends the API call as an error (``AppError``) whose message is the run's message
with its reason (``streaming.failure_text``); its last state is still the job's last output.
``final_state`` checks that, so tests keep reading the state's fields either way."""

from __future__ import annotations

from typing import Any

from gradio_client.exceptions import AppError


def final_state(job: Any, timeout: float = 120) -> dict:
    """The job's last state; for a failed run, after checking that the call raised
    ``AppError`` carrying the state's message and reason (a returned error state fails)."""
    try:
        result = job.result(timeout=timeout)
    except AppError as error:
        state = job.outputs()[-1]
        assert state["status"] == "error", state
        assert error.message.startswith(state["message"]), (error.message, state["message"])
        assert f"(reason: {state['reason']}" in error.message, error.message
        return state
    assert result["status"] != "error", f"a failed run must end the call as an error: {result}"
    return result
