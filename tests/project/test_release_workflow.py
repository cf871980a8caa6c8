"""The release workflow builds what ``make release-check`` checks and publishes only on a version
tag, through trusted publishing: read from .github/workflows/release.yml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml
from testenv import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def load() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def commands(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_every_push_builds_the_sdist_and_wheel_with_the_frontend_and_checks_them():
    workflow = load()
    assert "v*" in workflow["on"]["push"]["tags"] and "pull_request" in workflow["on"]
    build = " ".join(commands(workflow["jobs"]["build"]))
    for command in (
        "npm ci",
        "gradio cc build --no-generate-docs",
        "python -m build --outdir dist .",
        "twine check --strict dist/*",
    ):
        assert command in build, command
    assert build.index("gradio cc build") < build.index("python -m build")
    assert build.index("python -m build") < build.index("twine check")
    uploads = [
        s for s in workflow["jobs"]["build"]["steps"] if "upload-artifact" in s.get("uses", "")
    ]
    assert uploads and uploads[0]["with"]["path"] == "dist/"


def test_only_a_version_tag_publishes_and_through_trusted_publishing():
    workflow = load()
    assert workflow["permissions"] == {"contents": "read"}
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert publish["permissions"] == {"id-token": "write"}  # no stored token
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert uses[-1] == "pypa/gh-action-pypi-publish@release/v1"
    assert not any("password" in str(step.get("with", {})) for step in publish["steps"])
    tag_check = next(
        step for step in workflow["jobs"]["build"]["steps"] if "tag" in step.get("name", "")
    )
    assert "GITHUB_REF_NAME#v" in tag_check["run"] and "pyproject.toml" in tag_check["run"]


def test_the_tag_check_accepts_the_version_tag_and_refuses_another():
    step = next(s for s in load()["jobs"]["build"]["steps"] if "tag" in s.get("name", ""))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    for tag, expected in ((f"v{version}", 0), ("v999.0.0", 1)):
        env = {**os.environ, "GITHUB_REF_NAME": tag, "PATH": path}
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env)
        assert done.returncode == expected, tag
