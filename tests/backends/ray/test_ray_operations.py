"""The ray backend and ``serve run`` as an operator uses them (issue #30), on a local Ray of its
own (the tests here remove Serve from the cluster): the app keeps serving across ``serve
shutdown`` and a redeploy, the command a missing application's message prints starts it,
``serve run`` fails fast on a cluster without GPUs, says whether it joined a cluster, and
Ctrl-C removes what it deployed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import ray
from ray import serve as ray_serve
from ray_toys import NAMESPACE, STEP_LOG, StepLog
from test_ray import TESTS, start_ray
from test_ray_serving import assert_plain

from gradio_diffusion_preview import stream
from gradio_diffusion_preview.backends.ray.backend import RayBackend
from gradio_diffusion_preview.cli import main
from gradio_diffusion_preview.serving import ServeSettings, run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray cluster at a time

APP = "ops"
TOY = ["ray-counting", "--plugin", "ray_toys", "--num-cpus", "0"]


@pytest.fixture(scope="module")
def gcs():
    """A local Ray with the toy backend as the application ``ops``; its GCS address."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        start_ray(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            namespace=NAMESPACE,
            _node_ip_address="127.0.0.1",
        )
        ray_serve.start(proxy_location="Disabled")
        ray.remote(StepLog).options(name=STEP_LOG, num_cpus=0).remote()
        run(ServeSettings(app=APP, backend="ray-counting", plugins=["ray_toys"], num_gpus=0))
        yield ray.get_runtime_context().gcs_address
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        ray_serve.shutdown()
        ray.shutdown()


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


def test_ctrl_c_removes_what_a_blocking_serve_run_deployed(gcs):
    command = [sys.executable, "-m", "gradio_diffusion_preview", "serve", "run", *TOY]
    server = subprocess.Popen(
        [*command, "--app", "until-ctrl-c", "--address", gcs],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    said = []
    try:
        for line in server.stderr:
            said.append(line)
            if "Ctrl-C removes it" in line:
                break
        assert any("which this process joined" in line for line in said), said
        assert ray_serve.status().applications["until-ctrl-c"].status == "RUNNING"
        server.send_signal(signal.SIGINT)
        rest = server.communicate(timeout=120)[1]
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 130, rest
    assert "Removed the application 'until-ctrl-c'." in rest
    assert "until-ctrl-c" not in ray_serve.status().applications
