"""docs/deploy.md is what happens: its requirements and catalogue excerpts are the demo's files
verbatim, its own catalogue blocks load as a policy, and every command it shows runs here:
each ``make space`` as the Makefile runs it (release/space.py with the same SPACE and HARDWARE,
the wheel built once) giving the folder the page describes, and ``hf upload`` on that folder as
far as this offline machine lets it go (its arguments accepted, the upload refused offline)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from testenv import ROOT

from gradio_diffusion_preview import get_registry
from gradio_diffusion_preview.policy import Policy

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PAGE = ROOT / "docs" / "deploy.md"
RECIPE = (
    "$(PY) release/space.py $(if $(SPACE),--space $(SPACE)) "
    "$(if $(HARDWARE),--hardware $(HARDWARE))"
)
TORCH_LINE = {"cpu": "torch==2.13.0+cpu", "gpu": "torch==2.13.0", "inference": None}


def blocks(marker: str, language: str) -> list[tuple[str, str]]:
    """(the marker's argument, the block) for each block of ``language`` under ``marker``."""
    pattern = rf"<!-- {marker}:? ?(\S*) -->\n```{language}\n(.*?)\n```"
    return re.findall(pattern, PAGE.read_text(), flags=re.S)


def commands() -> list[str]:
    text = PAGE.read_text()
    found = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)
    return [line for block in found for line in block.splitlines() if line.strip()]


def test_the_excerpts_are_the_demos_files():
    excerpts = blocks("excerpt", r"\w+")
    assert {path for path, _ in excerpts} == {
        "demo/requirements.txt",
        "demo/requirements-gpu.txt",
        "demo/requirements-inference.txt",
        "demo/catalogue.toml",
        "demo/catalogue-inference.toml",
    }
    for path, block in excerpts:
        assert block in (ROOT / path).read_text(), f"docs/deploy.md is out of date with {path}"


def test_the_pages_catalogue_blocks_load_as_a_policy():
    (catalogue,) = [block for _, block in blocks("catalogue", "toml")]
    policy = Policy.from_dict(tomllib.loads(catalogue))
    entry = policy.entry("diffusers", "sd-turbo")
    assert entry.options == {"device": "cuda", "dtype": "float16"}
    assert set(policy.backends()) <= set(get_registry().backends())


def test_the_variables_and_secrets_named_are_read_by_the_demo_and_backend():
    text = PAGE.read_text()
    assert "DIFFUSION_PREVIEW_CATALOGUE" in text and "HF_TOKEN" in text
    assert 'os.environ.get("DIFFUSION_PREVIEW_CATALOGUE")' in (ROOT / "demo/app.py").read_text()
    for kind in ("cpu-basic", "t4-small", "zero-a10g", "deploy-zerogpu.md", "Python 3.11"):
        assert kind in text


def test_every_command_is_a_make_space_or_an_hf_upload_and_make_space_runs_release_space():
    shown = commands()
    assert {line.split()[0] + " " + line.split()[1] for line in shown} == {
        "make space",
        "hf upload",
    }
    assert RECIPE in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_the_commands_make_the_folders_the_page_describes_and_hf_upload_takes_them(
    tmp_path: Path, package_wheel: Path
):
    wheel = package_wheel
    made = 0
    for line in commands():
        words = shlex.split(line)
        if words[:2] == ["make", "space"]:
            variables = dict(word.split("=", 1) for word in words[2:])
            assert set(variables) <= {"SPACE", "HARDWARE"}, line
            hardware = variables.get("HARDWARE", "cpu")
            out = tmp_path / f"space-{made}" / "dist" / "space"
            subprocess.run(
                [sys.executable, "release/space.py", "--wheel", str(wheel), "--out", str(out)]
                + (["--space", variables["SPACE"]] if "SPACE" in variables else [])
                + (["--hardware", variables["HARDWARE"]] if "HARDWARE" in variables else []),
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            requirements = (out / "requirements.txt").read_text()
            address = f"https://huggingface.co/spaces/owner/name/resolve/main/{wheel.name}"
            assert address in requirements
            torch = TORCH_LINE[hardware]
            assert (torch in requirements.splitlines()) if torch else "torch" not in requirements
            made += 1
        else:
            assert words[:2] == ["hf", "upload"], line
            assert made, "hf upload comes after make space"
            hf = Path(sys.executable).with_name("hf")
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
            done = subprocess.run(
                [str(hf), *words[1:]],
                cwd=out.parents[1],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            said = done.stdout + done.stderr
            # the arguments were taken; only the network is refused here
            assert done.returncode != 0 and "offline mode is enabled" in said, said
    assert made == 4
