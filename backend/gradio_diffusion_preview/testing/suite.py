"""Every check at once: ``check_backend``, which runs them all and reports every failure, and
``BackendConformanceTests``, which turns each into a pytest test of a plugin's own suite.

Both make the ordinary run once and share it between the checks that only read it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..backend import Backend
from .checks_events import check_event_order, check_final_images, check_steps
from .checks_files import check_no_files
from .checks_identity import check_identity
from .checks_img2img import check_image_to_image, check_image_to_image_preview
from .checks_previews import check_previews
from .checks_requests import check_batch, check_failure, check_seed
from .checks_signals import check_cancel, check_cancel_at_start, check_finish_early
from .checks_status import check_status
from .checks_stream import check_stream
from .defaults import DEFAULT_CANCEL_AFTER, DEFAULT_TIMEOUT
from .recording import Recording, record_run, resolve_request, run_backend
from .report import ConformanceError, ConformanceReport, backend_name

CHECKS = (
    "identity",
    "event_order",
    "steps",
    "status",
    "previews",
    "final_images",
    "seed",
    "no_files",
    "batch",
    "cancel",
    "cancel_at_start",
    "finish_early",
    "failure",
    "stream",
    "image_to_image",
    "image_to_image_preview",
)
"""Every check's name, in the order ``check_backend`` runs them."""


def check_backend(
    backend: Backend,
    *,
    failing_request: dict[str, Any] | None = None,
    cancel_after: int = DEFAULT_CANCEL_AFTER,
    cancel_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    allow_writes_under: Sequence[str | os.PathLike] = (),
    skip: Sequence[str] = (),
    **fields: Any,
) -> ConformanceReport:
    """Run every check on ``backend`` with the request made of ``fields``; raise one
    ``ConformanceError`` listing every failure, or return the report (passed and skipped).

    ``skip`` names checks not to run (see ``CHECKS``). The main run is shared by the checks
    that only read it, so a full check costs about nine short runs (one of them cancelled
    right after Started). ``cancel_timeout`` is the ceiling after which a run sent cancel or
    finish early counts as hung (by default 30 s, or ten step times if longer); how promptly
    it stops is judged by counting steps, so a busy machine needs no wider value.
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; the checks are: {', '.join(CHECKS)}")
    report = ConformanceReport(backend_name(backend))
    failures: list[ConformanceError] = []

    def attempt(name: str, check: Callable[[], str | None]) -> None:
        if name in skip:
            report.skipped[name] = "skipped by the caller"
            return
        try:
            reason = check()
        except ConformanceError as error:
            failures.append(error)
            report.failed[name] = str(error)
        else:
            if reason:
                report.skipped[name] = reason
            else:
                report.passed.append(name)

    attempt("identity", lambda: check_identity(backend))
    if "identity" in report.failed:
        return conclude(report, failures)
    request = resolve_request(backend, fields)
    fields = request.model_dump()  # resolved, so every run below uses the same model and seed
    main = record_run(backend, request, timeout, watch_files="no_files" not in skip)
    shared = {"recording": main, "timeout": timeout}
    attempt("event_order", lambda: check_event_order(backend, **shared))
    dependent = ("steps", "status", "previews", "final_images", "seed", "no_files")
    if "event_order" in report.failed:
        for name in dependent:
            report.skipped[name] = "not run: the event order check failed"
    else:
        attempt("steps", lambda: check_steps(backend, **shared))
        attempt("status", lambda: check_status(backend, **shared))
        attempt("previews", lambda: check_previews(backend, **shared))
        attempt("final_images", lambda: check_final_images(backend, **shared))
        attempt("seed", lambda: check_seed(backend, **shared))
        attempt(
            "no_files",
            lambda: check_no_files(backend, allow_writes_under=allow_writes_under, **shared),
        )
    attempt("batch", lambda: check_batch(backend, timeout=timeout, **fields))
    signal_args = {
        "cancel_after": cancel_after,
        "cancel_timeout": cancel_timeout,
        "timeout": timeout,
    }
    attempt("cancel", lambda: check_cancel(backend, **signal_args, **fields))
    attempt(
        "cancel_at_start",
        lambda: check_cancel_at_start(
            backend, cancel_timeout=cancel_timeout, reference=main, timeout=timeout, **fields
        ),
    )
    attempt("finish_early", lambda: check_finish_early(backend, **signal_args, **fields))
    attempt(
        "failure",
        lambda: check_failure(backend, failing_request=failing_request, timeout=timeout, **fields),
    )
    attempt("stream", lambda: check_stream(backend, timeout=timeout, **fields))
    attempt("image_to_image", lambda: check_image_to_image(backend, timeout=timeout, **fields))
    attempt(
        "image_to_image_preview",
        lambda: check_image_to_image_preview(backend, timeout=timeout, **fields),
    )
    return conclude(report, failures)


def conclude(report: ConformanceReport, failures: list[ConformanceError]) -> ConformanceReport:
    """Return the report when nothing failed; otherwise raise the one failure, or one error
    that sums up them all, with the report attached."""
    if not failures:
        return report
    if len(failures) == 1:
        error = failures[0]
    else:
        error = ConformanceError(
            report.backend,
            "conformance",
            "every check to pass",
            f"{len(failures)} failures ({', '.join(report.failed)})\n\n"
            + "\n\n".join(str(f) for f in failures),
            failures=failures,
            fix="each failure below has its own fix line",
        )
    error.report = report
    raise error


class BackendConformanceTests:
    """Subclass in a test module (name it ``Test...``) to get one pytest test per check.

    Set ``backend`` (or override ``make_backend``), ``request`` (request fields, over
    ``default_fields``) and, if the backend lists its models, ``failing_request`` (fields that
    pass validation but make ``generate`` fail). Checks that do not apply are skipped with the
    reason. The run that several checks read is made once per class. ``cancel_timeout`` is
    the ceiling that catches a run that never ends after cancel or finish early (see
    ``check_backend``).
    """

    backend: Backend
    request: dict[str, Any] = {}
    failing_request: dict[str, Any] | None = None
    cancel_after: int = DEFAULT_CANCEL_AFTER
    cancel_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    allow_writes_under: Sequence[str | os.PathLike] = ()

    def make_backend(self) -> Backend:
        return self.backend

    def request_fields(self) -> dict[str, Any]:
        return dict(self.request)

    def _main(self) -> tuple[Backend, Recording]:
        backend, fields = self.make_backend(), self.request_fields()
        cache = type(self).__dict__.get("_conformance_runs")
        if cache is None:
            cache = {}
            type(self)._conformance_runs = cache
        key = (id(backend), repr(sorted(fields.items())))
        if key not in cache:
            cache[key] = run_backend(backend, timeout=self.timeout, watch_files=True, **fields)
        return backend, cache[key]

    def _signal_args(self) -> dict[str, Any]:
        return {
            "cancel_after": self.cancel_after,
            "cancel_timeout": self.cancel_timeout,
            "timeout": self.timeout,
            **self.request_fields(),
        }

    @staticmethod
    def _skip_if(reason: str | None) -> None:
        if reason:
            import pytest

            pytest.skip(reason)

    def test_identity(self) -> None:
        check_identity(self.make_backend())

    def test_event_order(self) -> None:
        backend, rec = self._main()
        check_event_order(backend, recording=rec)

    def test_steps(self) -> None:
        backend, rec = self._main()
        check_steps(backend, recording=rec)

    def test_status(self) -> None:
        backend, rec = self._main()
        check_status(backend, recording=rec)

    def test_previews(self) -> None:
        backend, rec = self._main()
        check_previews(backend, recording=rec)

    def test_final_images(self) -> None:
        backend, rec = self._main()
        check_final_images(backend, recording=rec)

    def test_seed(self) -> None:
        backend, rec = self._main()
        self._skip_if(check_seed(backend, recording=rec, timeout=self.timeout))

    def test_batch(self) -> None:
        self._skip_if(
            check_batch(self.make_backend(), timeout=self.timeout, **self.request_fields())
        )

    def test_cancel(self) -> None:
        self._skip_if(check_cancel(self.make_backend(), **self._signal_args()))

    def test_cancel_at_start(self) -> None:
        backend, rec = self._main()
        self._skip_if(
            check_cancel_at_start(
                backend,
                cancel_timeout=self.cancel_timeout,
                reference=rec,
                timeout=self.timeout,
                **self.request_fields(),
            )
        )

    def test_finish_early(self) -> None:
        self._skip_if(check_finish_early(self.make_backend(), **self._signal_args()))

    def test_failure(self) -> None:
        self._skip_if(
            check_failure(
                self.make_backend(),
                failing_request=self.failing_request,
                timeout=self.timeout,
                **self.request_fields(),
            )
        )

    def test_no_files(self) -> None:
        backend, rec = self._main()
        check_no_files(
            backend, recording=rec, timeout=self.timeout, allow_writes_under=self.allow_writes_under
        )

    def test_stream(self) -> None:
        check_stream(self.make_backend(), timeout=self.timeout, **self.request_fields())

    def test_image_to_image(self) -> None:
        self._skip_if(
            check_image_to_image(self.make_backend(), timeout=self.timeout, **self.request_fields())
        )
