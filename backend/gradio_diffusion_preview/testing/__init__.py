"""The conformance kit: checks that a backend keeps the contract, for a plugin's own test suite.

One call runs every check and reports every failure::

    from gradio_diffusion_preview.testing import check_backend

    def test_backend_conforms():
        check_backend(MyBackend(), prompt="a red fox", steps=4, width=64, height=64,
                      failing_request={"options": {"style": "no-such-style"}})

or one pytest test per check, by subclassing ``BackendConformanceTests``::

    class TestMyBackend(BackendConformanceTests):
        backend = MyBackend()
        request = {"prompt": "a red fox", "steps": 4, "width": 64, "height": 64}
        failing_request = {"options": {"style": "no-such-style"}}

Every check runs the backend for real, on a worker thread with a time limit (as the server
does), and raises ``ConformanceError``, an ``AssertionError`` that names the backend, the check,
what was expected, what was seen and the events the backend yielded. A check that does not apply
to a backend (``check_cancel`` on one that declares ``cancel=False``) returns the reason instead
of ``None``. Backends that wait on a service and report no steps (``step_events=False``) are
checked on their Status events and on a cancel sent right after Started. Cancel and finish
early are judged by the steps a backend runs after the signal, never by seconds: a busy machine
slows a run down but cannot fail a good backend. Request fields are those of
``GenerationRequest``; by default the kit asks for a small, short, seeded run within the
model's limits (see ``default_fields``), so tiny models check in seconds on a CPU.

Import from this package; its modules are how the kit is organised, not its interface:
``suite`` (all checks at once), ``checks_*`` (the checks, by what they look at),
``recording`` and ``puller`` (running a backend), ``file_writes`` and ``network_calls``
(watching what a backend touches), ``report`` (errors and messages) and ``defaults``.
"""

from __future__ import annotations

# Names given as "X as X" are public too, though not in __all__ (as in the single module).
from .checks_events import check_event_order, check_final_images, check_steps
from .checks_files import check_no_files
from .checks_identity import check_identity
from .checks_img2img import check_image_to_image, check_image_to_image_preview
from .checks_previews import check_previews
from .checks_requests import NO_SUCH_MODEL as NO_SUCH_MODEL
from .checks_requests import check_batch, check_failure, check_seed
from .checks_signals import check_cancel, check_cancel_at_start, check_finish_early
from .checks_status import check_status
from .checks_stream import check_stream
from .defaults import DEFAULT_CANCEL_AFTER as DEFAULT_CANCEL_AFTER
from .defaults import DEFAULT_HANG_CEILING as DEFAULT_HANG_CEILING
from .defaults import DEFAULT_PROMPT as DEFAULT_PROMPT
from .defaults import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .defaults import default_fields
from .recording import Recording, run_backend
from .report import ConformanceError, ConformanceReport
from .suite import CHECKS as CHECKS
from .suite import BackendConformanceTests, check_backend

__all__ = [
    "BackendConformanceTests",
    "ConformanceError",
    "ConformanceReport",
    "Recording",
    "check_backend",
    "check_batch",
    "check_cancel",
    "check_cancel_at_start",
    "check_event_order",
    "check_failure",
    "check_final_images",
    "check_finish_early",
    "check_identity",
    "check_no_files",
    "check_previews",
    "check_seed",
    "check_status",
    "check_steps",
    "check_stream",
    "check_image_to_image",
    "check_image_to_image_preview",
    "default_fields",
    "run_backend",
]
