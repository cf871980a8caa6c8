"""torch's CPU threads in the diffusers backend (issue #33): the automatic rule, the settings that
override it (argument, DIFFUSION_PREVIEW_TORCH_THREADS, OMP_NUM_THREADS, keep), and a real CPU
run of the bundled model applying the choice once per process and logging it. Nothing is timed:
the thread count is read back from torch."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest
import torch

from gradio_diffusion_preview import Finished, GenerationRequest, RunControl, validate_request
from gradio_diffusion_preview.backends.diffusers import cpu_threads
from gradio_diffusion_preview.backends.diffusers.backend import DiffusersBackend
from gradio_diffusion_preview.backends.diffusers.cpu_threads import (
    ENV_VAR,
    ThreadChoice,
    ThreadSettingError,
    apply_for,
    automatic_threads,
    choose,
    usable_cores,
)
from gradio_diffusion_preview.bundled.shapes import model_dir

LOGGER = "gradio_diffusion_preview.backends.diffusers.cpu_threads"
PAGE = Path(__file__).resolve().parents[3] / "docs" / "backends" / "diffusers.md"


@pytest.mark.parametrize(
    ("cores", "runs", "threads"),
    [(1, 1, 1), (2, 1, 1), (2, 2, 1), (4, 1, 3), (8, 1, 7), (8, 2, 3), (16, 4, 3), (16, 32, 1)],
)
def test_the_automatic_rule_leaves_a_core_free_and_shares_the_rest_among_the_runs(
    cores, runs, threads
):
    assert automatic_threads(cores, runs) == threads


def test_usable_cores_are_capped_by_a_container_quota(tmp_path):
    affinity = usable_cores(tmp_path)  # no cgroup files there: the CPU affinity alone
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores(tmp_path) == affinity
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1: one CPU
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert usable_cores(tmp_path) == affinity


def test_the_argument_beats_the_variable_which_beats_omp_which_beats_the_rule(caplog):
    env = {ENV_VAR: "3", "OMP_NUM_THREADS": "5"}
    assert choose(4, environ=env) == ThreadChoice(4, "torch_threads=4")
    assert choose(None, environ=env) == ThreadChoice(3, ENV_VAR)
    assert choose(None, environ={"OMP_NUM_THREADS": "5,2"}) == ThreadChoice(5, "OMP_NUM_THREADS")
    automatic = choose(None, runs=2, environ={})
    assert automatic.threads == automatic_threads(usable_cores(), 2)
    assert automatic.source == "automatic" and "2 runs at once" in automatic.why
    assert choose("auto", environ=env).source == "automatic"  # an explicit auto ignores both
    assert choose(None, environ={ENV_VAR: "auto", "OMP_NUM_THREADS": "5"}).source == "automatic"
    assert choose("keep", environ=env) == ThreadChoice(None, "torch_threads=keep")
    assert choose(None, environ={ENV_VAR: " KEEP "}) == ThreadChoice(None, ENV_VAR)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert choose(None, environ={ENV_VAR: "lots", "OMP_NUM_THREADS": "5"}).threads == 5
    assert f"{ENV_VAR} is 'lots': use a whole number" in caplog.text


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, True])
def test_a_bad_setting_is_refused_when_the_backend_is_made(bad):
    with pytest.raises(ThreadSettingError, match="torch_threads is .*use a whole number"):
        DiffusersBackend(torch_threads=bad)


@pytest.mark.parametrize("bad", [0, "2", 1.0])
def test_concurrent_runs_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="concurrent_runs must be"):
        DiffusersBackend(concurrent_runs=bad)


@pytest.fixture
def fresh_process(monkeypatch, caplog):
    """This process as if no CPU run had applied threads yet (the module's record of the
    choice cleared, the settings from the environment removed); torch's own count is put
    back afterwards, so the rest of the suite keeps its setting."""
    before = torch.get_num_threads()
    monkeypatch.setattr(cpu_threads, "_applied", None)
    monkeypatch.setattr(cpu_threads, "_refused", set())
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    caplog.set_level(logging.INFO, logger=LOGGER)
    yield caplog
    torch.set_num_threads(before)


def cpu_run(backend: DiffusersBackend) -> int:
    """Two steps of the bundled model on the CPU, through the backend's generate(); the
    threads torch used on the run's own thread (read at each step)."""
    seen: set[int] = set()
    backend.step_listeners.append(lambda step, total: seen.add(torch.get_num_threads()))
    request = validate_request(
        GenerationRequest(
            prompt="a red circle on a blue background",
            model=str(model_dir()),
            steps=2,
            seed=1,
            width=64,
            height=64,
            options={"device": "cpu"},
        ),
        backend,
    )
    events = list(backend.generate(request, RunControl()))
    assert isinstance(events[-1], Finished), events[-1]
    backend.step_listeners.clear()
    [threads] = seen
    return threads


def in_a_new_thread() -> int:
    """The threads torch uses on a thread that starts torch work now (the app's, the next
    run's): torch's per-process count, which a thread takes at its first parallel op."""
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return seen[0]


def thread_messages(caplog) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


@pytest.mark.slow
def test_the_first_cpu_run_applies_the_argument_once_and_logs_it(fresh_process):
    caplog = fresh_process
    torch.set_num_threads(1)
    first = DiffusersBackend(torch_threads=3)
    assert cpu_run(first) == 3
    assert in_a_new_thread() == 3
    [(level, message)] = thread_messages(caplog)
    assert level == logging.INFO
    assert message.startswith("torch CPU threads: 3, from torch_threads=3;")
    assert ENV_VAR in message  # how to change it
    assert cpu_run(first) == 3
    other = DiffusersBackend(torch_threads=2)  # process-wide: the first CPU run's choice stays
    assert cpu_run(other) == 3
    assert cpu_run(other) == 3
    messages = thread_messages(caplog)
    assert len(messages) == 2, messages  # the start, and the refusal once
    assert messages[1][0] == logging.WARNING
    assert "stay 3" in messages[1][1] and "2 from torch_threads=2 is not applied" in messages[1][1]


@pytest.mark.slow
def test_the_environment_variable_sets_the_threads_of_a_default_backend(fresh_process, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "2")
    torch.set_num_threads(1)
    assert cpu_run(DiffusersBackend()) == 2
    assert in_a_new_thread() == 2
    assert thread_messages(fresh_process)[0][1].startswith(f"torch CPU threads: 2, from {ENV_VAR}")


@pytest.mark.slow
def test_a_default_backend_applies_the_automatic_rule_not_torchs_default(fresh_process):
    torch.set_num_threads(usable_cores() + 1)  # what torch would pick on a quota'd container
    assert cpu_run(DiffusersBackend()) == automatic_threads()
    assert in_a_new_thread() == automatic_threads()
    [(_, message)] = thread_messages(fresh_process)
    assert f"from automatic ({usable_cores()} usable core" in message
    documented = re.search(r"^    (torch CPU threads: .*)$", PAGE.read_text(), re.MULTILINE)[1]

    def shape(line: str) -> str:  # the page's line is from a 2-core machine
        return re.sub(r"\d+", "N", line).replace("cores", "core")

    assert shape(message) == shape(documented)


@pytest.mark.slow
def test_keep_leaves_the_apps_own_setting(fresh_process):
    torch.set_num_threads(usable_cores() + 1)  # the app's own choice, made before any run
    assert cpu_run(DiffusersBackend(torch_threads="keep")) == usable_cores() + 1
    assert "from torch's own setting (keep)" in thread_messages(fresh_process)[0][1]


def test_a_gpu_run_applies_nothing(fresh_process):
    torch.set_num_threads(1)
    for device in ("cuda", "cuda:1", "mps"):
        assert apply_for(torch.device(device), ThreadChoice(3, "torch_threads=3")) is None
    assert torch.get_num_threads() == 1 and in_a_new_thread() == 1
    assert cpu_threads.applied() is None and not thread_messages(fresh_process)


@pytest.mark.slow
def test_the_pages_example_shares_the_cores_between_two_runs(fresh_process):
    [example] = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    namespace: dict = {}
    exec(compile(example, str(PAGE), "exec"), namespace)
    assert callable(namespace["generate"])
    assert cpu_run(namespace["backend"]) == automatic_threads(usable_cores(), 2)
    assert "2 runs at once" in thread_messages(fresh_process)[0][1]
