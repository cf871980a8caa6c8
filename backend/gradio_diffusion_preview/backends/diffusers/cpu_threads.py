"""How many threads torch uses for CPU runs: chosen for the machine and the runs at once.

torch's default is one intra-op thread per core. Each operation is split among those threads and
waits for the slowest one, so as soon as anything else wants a core (another process, Gradio's
own work beside the generation, a second run) a thread waits for its turn on a core and every
operation waits with it: on a 2-core machine a run of the bundled model took 6 to 15 times its
quiet time with torch's default 2 threads while another process kept both cores busy, and 1.9
times with one thread, which was as fast when the machine was quiet (``make bench`` measures it;
docs/benchmarks.md). So the automatic choice leaves one core for everything else and shares the
rest among the runs the app lets go at once::

    threads = max(1, (usable cores - 1) // runs at once)

Usable cores are those this process may run on (its CPU affinity) and, in a container, its CPU
quota (cgroup ``cpu.max``), which torch's own default does not read.

The setting, first found wins: the backend's ``torch_threads`` argument, the environment
variable ``DIFFUSION_PREVIEW_TORCH_THREADS``, ``OMP_NUM_THREADS`` (which Ray sets for each
replica to the CPUs it reserves), then the automatic choice. Each takes a whole number of
threads, ``auto`` or ``keep`` (leave torch's threads as they are: for an app that sets them
itself). ``torch.set_num_threads`` sets the process's count: the first CPU run applies the
choice, once, before it loads its model, and logs it; a later backend with another choice is
told so in the log and changes nothing. Every thread that starts torch work after that uses it:
each run (each has a thread of its own) and the app's own torch work on new threads. With
torch's OpenMP build a thread that had already run torch work keeps the count it had (OpenMP
keeps one per thread). Runs on a GPU apply nothing.

This module imports torch only in ``apply_for``, so ``choose`` and ``automatic_threads`` can
be called where torch must stay unloaded (the test suite's conftest sets ``OMP_NUM_THREADS``
from them before anything imports torch).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ENV_VAR = "DIFFUSION_PREVIEW_TORCH_THREADS"
AUTO = "auto"
KEEP = "keep"
CGROUP = Path("/sys/fs/cgroup")


class ThreadSettingError(ValueError):
    """A thread setting that is not a whole number of at least 1, ``auto`` or ``keep``."""


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count for CPU runs (None: keep torch's own) and where it came from."""

    threads: int | None
    source: str  # "torch_threads=4", "DIFFUSION_PREVIEW_TORCH_THREADS", "automatic", ...
    why: str = ""  # how the automatic choice was made, for the log


def parse_setting(value: int | str | None, where: str) -> int | str | None:
    """``value`` as a thread count, ``"auto"`` or ``"keep"`` (None and "" stay None);
    ``ThreadSettingError`` naming ``where`` and the valid values otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in (AUTO, KEEP):
            return text
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ThreadSettingError(
        f"{where} is {value!r}: use a whole number of threads (at least 1), "
        f"'{AUTO}' (chosen for the machine) or '{KEEP}' (leave torch's setting alone)"
    )


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a
    container's ``--cpus`` or Kubernetes limit), rounded up; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, _, period = (cgroup / "cpu.max").read_text().strip().partition(" ")
        if quota != "max":
            return int(quota) / int(period or 100_000)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def automatic_threads(cores: int | None = None, runs: int = 1) -> int:
    """One core left for everything else, the rest shared by ``runs`` runs at once."""
    cores = usable_cores() if cores is None else cores
    return max(1, (cores - 1) // max(1, runs))


def choose(
    setting: int | str | None, runs: int = 1, environ: Mapping[str, str] | None = None
) -> ThreadChoice:
    """The choice for a backend with ``torch_threads=setting`` allowing ``runs`` runs at once.

    An unusable ``DIFFUSION_PREVIEW_TORCH_THREADS`` or ``OMP_NUM_THREADS`` is logged and
    skipped (the machine keeps serving); a bad ``setting`` raises ``ThreadSettingError``."""
    environ = os.environ if environ is None else environ
    chosen = parse_setting(setting, "torch_threads")
    source = f"torch_threads={chosen}"
    if chosen is None:
        try:
            chosen = parse_setting(environ.get(ENV_VAR), ENV_VAR)
            source = ENV_VAR
        except ThreadSettingError as error:
            log.warning("ignoring %s", error)
    if chosen is None and environ.get("OMP_NUM_THREADS", "").strip():
        first = environ["OMP_NUM_THREADS"].split(",")[0].strip()  # OpenMP allows "4,2"
        if first.isdigit() and int(first) >= 1:
            return ThreadChoice(int(first), "OMP_NUM_THREADS")
        log.warning("ignoring OMP_NUM_THREADS=%r: not a thread count", environ["OMP_NUM_THREADS"])
    if chosen == KEEP:
        return ThreadChoice(None, source)
    if isinstance(chosen, int):
        return ThreadChoice(chosen, source)
    cores = usable_cores()
    runs = max(1, runs)
    why = (
        f"{cores} usable core{'s' if cores != 1 else ''}, {runs} run{'s' if runs != 1 else ''} "
        "at once, one core left for the app's other work"
    )
    return ThreadChoice(automatic_threads(cores, runs), "automatic", why)


_lock = threading.Lock()
_applied: ThreadChoice | None = None
_refused: set[ThreadChoice] = set()


def applied() -> ThreadChoice | None:
    """The choice the first CPU run of this process applied, or None before it."""
    return _applied


def apply_for(device: torch.device, choice: ThreadChoice) -> ThreadChoice | None:
    """Before a run on ``device``: on the CPU, apply ``choice`` unless one was applied already
    (torch's threads are process-wide), logging what was done; on a GPU, nothing. Returns the
    choice in force for CPU runs (None on a GPU)."""
    global _applied
    if device.type != "cpu":
        return None
    import torch

    with _lock:
        if _applied is None:
            if choice.threads is not None:
                torch.set_num_threads(choice.threads)
            _applied = choice
            how = f" ({choice.why})" if choice.why else ""
            log.info(
                "torch CPU threads: %d, from %s%s; change it with DiffusersBackend("
                "torch_threads=...) or %s",
                torch.get_num_threads(),
                "torch's own setting (keep)" if choice.threads is None else choice.source,
                how,
                ENV_VAR,
            )
        elif choice.threads not in (None, _applied.threads) and choice not in _refused:
            _refused.add(choice)
            log.warning(
                "torch CPU threads stay %d (from %s, applied by the first CPU run): they are "
                "process-wide, so %d from %s is not applied",
                torch.get_num_threads(),
                _applied.source,
                choice.threads,
                choice.source,
            )
        return _applied
