"""The ray backend and ``serve run`` as an operator uses them (issue #30), on the session's local
Ray (``conftest.py``), with a Serve of this module's own (the tests here remove Serve from the
cluster): the app keeps serving across ``serve shutdown`` and a redeploy, the command a missing
application's message prints starts it, ``serve run`` fails fast on a cluster without GPUs,
says whether it joined a cluster, and Ctrl-C removes what it deployed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import yaml
from ray import serve as ray_serve
from test_ray import DEPLOY_TIMEOUT
from test_ray_serving import assert_plain
from testenv import ROOT, free_port

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.ray.backend import RayBackend
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.serving import ServeSettings, run
from gradio_diffusion_preview.serving.settings import DEFAULT_APP

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray cluster at a time

APP = "ops"
TOY = ["ray-counting", "--plugin", "ray_toys", "--num-cpus", "0"]


@pytest.fixture(scope="module")
def gcs(ray_cluster):
    """Serve on the Ray of the Ray tests (``conftest.py``) with the toy backend as the application
    ``ops``; the GCS address."""
    try:
        ray_serve.start(proxy_location="Disabled")
        toy = ServeSettings(
            app=APP, backend="ray-counting", plugins=["ray_toys"], num_gpus=0, num_cpus=0
        )
        run(toy)
        yield ray_cluster.gcs
    finally:
        ray_serve.shutdown()  # what is left of this module's applications; Ray stays


def cli(*argv: str, **options) -> subprocess.CompletedProcess:
    """``python -m gradio_diffusion_preview ...`` in a process of its own."""
    command = [sys.executable, "-m", "gradio_diffusion_preview", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **options)


def last_state(backend: RayBackend):
    return list(stream(backend, prompt="flat", steps=3))[-1]


def test_the_app_keeps_serving_across_serve_shutdown_and_a_redeploy(gcs):
    backend = RayBackend.for_app(APP, id="ray-ops", options={"backend": "ray-counting"})
    assert last_state(backend).status == "done"

    # `serve shutdown` from another process: this one's link to Serve's controller is stale.
    shutdown = f"import ray; from ray import serve; ray.init(address={gcs!r}); serve.shutdown()"
    subprocess.run([sys.executable, "-c", shutdown], check=True, capture_output=True)
    gone = last_state(backend)
    assert (gone.status, gone.reason) == ("error", "unavailable"), gone
    assert_plain(gone.message)
    assert f"The Ray Serve application '{APP}' is not running" in gone.message

    # The command the message prints (the hosted backend's plugin and this cluster added).
    command = re.search(r"`(python -m gradio_diffusion_preview serve run [^`]+)`", gone.message)
    assert command, gone.message
    argv = command.group(1).split()[3:]
    assert argv == ["serve", "run", "ray-counting", "--app", APP]
    deployed = cli(*argv, *TOY[1:], "--address", gcs, "--non-blocking")
    assert deployed.returncode == 0, deployed.stderr
    assert "which this process joined" in deployed.stderr
    assert "no GPUs: each replica runs on CPU (--num-gpus 0)" in deployed.stderr

    # No restart: the next run finds the new controller and the redeployed application.
    states = list(stream(backend, prompt="flat", steps=3))
    assert states[-1].status == "done", states[-1]
    assert not [s for s in states if s.status == "error"]


def test_serve_run_on_a_cluster_without_gpus_fails_fast_with_the_fix(gcs, capsys):
    argv = ["serve", "run", *TOY, "--app", "wants-a-gpu", "--num-gpus", "1", "--non-blocking"]
    assert main([*argv, "--address", gcs]) == 2
    err = capsys.readouterr().err
    assert "asks for 1 GPU (--num-gpus) and the Ray cluster has 0" in err
    assert "Fix: pass --num-gpus 0" in err
    assert "wants-a-gpu" not in ray_serve.status().applications


def test_ctrl_c_removes_what_a_blocking_serve_run_deployed(gcs, monkeypatch):
    """The command the unconfigured ray backend's message prints, run as it is written (on
    this cluster, through RAY_ADDRESS), until Ctrl-C."""
    monkeypatch.delenv("DIFFUSION_PREVIEW_RAY_URL", raising=False)
    monkeypatch.delenv("DIFFUSION_PREVIEW_ENDPOINTS", raising=False)
    message = RayBackend().availability().message
    command = re.search(r"`(python -m gradio_diffusion_preview serve run [^`]+)`", message)[1]
    assert command == "python -m gradio_diffusion_preview serve run diffusers"
    server = subprocess.Popen(
        [sys.executable, *command.split()[1:]],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "RAY_ADDRESS": gcs},
    )
    said = []
    # A hang guard, not a bound on behaviour: a command that never says it deployed is ended.
    guard = threading.Timer(DEPLOY_TIMEOUT, server.kill)
    guard.start()
    try:
        for line in server.stderr:
            said.append(line)
            if "Ctrl-C removes it" in line:
                break
        assert any("which this process joined" in line for line in said), said
        assert ray_serve.status().applications[DEFAULT_APP].status == "RUNNING"
        server.send_signal(signal.SIGINT)
        rest = server.communicate(timeout=120)[1]
    finally:
        guard.cancel()
        if server.poll() is None:
            server.kill()
    assert server.returncode == 130, rest
    assert f"Removed the application '{DEFAULT_APP}'." in rest
    assert DEFAULT_APP not in ray_serve.status().applications


# --- docs/scaling.md, command by command --------------------------------------------------------

SCALING = ROOT / "docs" / "scaling.md"
SESSION = re.compile(r"<!-- ray console runs -->\n```console\n(.*?)\n```", flags=re.S)


def docs_commands() -> list[tuple[str, list[str]]]:
    """(command, lines shown under it) of every console session of docs/scaling.md marked to
    run, in order; a line ending in a backslash goes on on the next, as in a shell."""
    steps: list[tuple[str, list[str]]] = []
    for block in SESSION.findall(SCALING.read_text()):
        lines = block.replace("\\\n", "").splitlines()
        for line in lines:
            if line.startswith("$ "):
                steps.append((" ".join(line[2:].split()), []))
            else:
                steps[-1][1].append(line)
    return steps


def test_every_shell_command_of_the_scaling_page_is_run_here():
    text = SCALING.read_text()
    unmarked = re.findall(r"(?<!-->\n)```(?:bash|console|sh)\n(.*?)\n```", text, flags=re.S)
    # Only the install line is not run (no package index here); its extras must exist.
    assert [block.split("#")[0].strip() for block in unmarked] == [
        'pip install "gradio-diffusion-preview[ray,diffusers]"'
    ]
    project = (ROOT / "pyproject.toml").read_text()
    extras = project[project.index("[project.optional-dependencies]") :]
    assert re.search(r"^ray = ", extras, re.M) and re.search(r"^diffusers = ", extras, re.M)
    assert len(docs_commands()) >= 9


def test_the_scaling_page_runs_as_shown(gcs, ray_cluster, tmp_path):
    """Each command of the page's sessions in bash, in order, on the session's cluster: it
    stands in for `ray start --head` (RAY_ADDRESS and the dashboard's address are where that
    command would have put them), and has token authentication on, as a `ray start --head` on
    a machine with a token does. Runs last here: `serve deploy` and `serve shutdown` replace
    and remove every application."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("RAY_AUTH_MODE", "RAY_ADDRESS")  # as a fresh shell has them
    }
    env.update(
        PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}",
        RAY_ADDRESS=gcs,
        RAY_DASHBOARD_ADDRESS=f"http://127.0.0.1:{ray_cluster.dashboard_port}",
        GRADIO_SERVER_PORT=str(free_port()),
    )
    shown_config = yaml.safe_load(
        re.search(r"<!-- serve config above -->\n```yaml\n(.*?)```", SCALING.read_text(), re.S)[1]
    )
    (tmp_path / "app.py").write_text(
        re.search(r"<!-- app.py -->\n```python\n(.*?)```", SCALING.read_text(), re.S)[1]
    )
    background = []
    try:
        for command, shown in docs_commands():
            where = f"docs/scaling.md: $ {command}"
            if command == "ray start --head":
                continue  # the session's cluster
            if command.startswith("export "):
                name, value = command[len("export ") :].split("=", 1)
                env[name] = value
                continue
            if command.startswith("serve status") and "RAY_AUTH_MODE" in env:
                # The page's reason for the export: without it Ray's serve commands fail.
                bare = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
                refused = subprocess.run(
                    ["bash", "-c", command], cwd=tmp_path, env=bare, capture_output=True
                )
                assert refused.returncode != 0, where
            if command.endswith("&"):
                app = subprocess.Popen(
                    ["bash", "-c", f"exec {command[:-1]}"],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                background.append(app)
                said = [app.stdout.readline().rstrip("\n") for _ in shown]
                port = env["GRADIO_SERVER_PORT"]
                assert said == [line.replace("7860", port) for line in shown], where
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{where}\n{done.stdout}\n{done.stderr}"
            if "serve run diffusers" in command:
                assert "which this process joined" in done.stderr, done.stderr
            if "serve config" in command:
                assert yaml.safe_load((tmp_path / "app.yaml").read_text()) == shown_config
            if command == "serve status":
                status = yaml.safe_load(done.stdout)
                assert status["applications"]["diffusion-preview"]["status"] == "RUNNING"
    finally:
        for app in background:
            os.killpg(app.pid, signal.SIGTERM)
            app.wait()
