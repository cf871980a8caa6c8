"""The examples shipped in the package (``python -m gradio_diffusion_preview.examples``): listed,
copied into a new folder, and never copied over anything of the user's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradio_diffusion_preview.examples import copy_example, example_names


def test_the_examples_are_listed_and_copied_whole(tmp_path):
    listing = subprocess.run(
        [sys.executable, "-m", "gradio_diffusion_preview.examples"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "http-image-service" in listing.stdout.split()
    assert example_names() == ["http-image-service"]
    target = copy_example("http-image-service", tmp_path / "mine")
    assert sorted(path.name for path in target.iterdir()) == [
        "http_image_backend.py",
        "image_service.py",
        "test_http_image_backend.py",
    ]


def test_copying_refuses_an_unknown_example_and_an_existing_folder(tmp_path):
    with pytest.raises(ValueError, match="Fix: use one of: http-image-service"):
        copy_example("nope", tmp_path / "a")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.py").write_text("keep me")
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradio_diffusion_preview.examples",
            "http-image-service",
            str(tmp_path / "taken"),
        ],
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 2 and "already exists. Fix:" in answer.stderr
    assert (tmp_path / "taken" / "mine.py").read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["mine.py"]
