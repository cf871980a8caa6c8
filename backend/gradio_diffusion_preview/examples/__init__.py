"""Example plugins shipped with the package, so that a pip user can read, run and copy them.

Each example is a folder of plain files (not an importable package): copy one to start from it,

    python -m gradio_diffusion_preview.examples http-image-service my-backend

(without arguments, the examples are listed), then run its service, its backend and its tests
from that folder as the plugin guide (docs/plugins.md, section 8) shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def example_names() -> list[str]:
    """The examples shipped: one folder each."""
    return sorted(
        path.name for path in HERE.iterdir() if path.is_dir() and not path.name.startswith("_")
    )


def copy_example(name: str, destination: str | Path) -> Path:
    """Copy the example ``name`` into ``destination`` (a folder that must not exist yet, so
    nothing of yours is overwritten) and return its path."""
    if name not in example_names():
        raise ValueError(
            f"No example named {name!r}. Fix: use one of: {', '.join(example_names())}."
        )
    target = Path(destination)
    if target.exists():
        raise FileExistsError(
            f"{target} already exists. Fix: name a folder that does not exist yet; the example "
            "is copied into it and nothing is overwritten."
        )
    shutil.copytree(HERE / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
