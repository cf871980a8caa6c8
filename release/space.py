"""``make space``: assemble a ready Hugging Face Space folder, ``dist/space/``.

The folder holds the demo (``app.py``, ``catalogue.toml``), a ``README.md`` with the Space's front
matter (from ``demo/README.md``), the package's wheel, and a ``requirements.txt`` that installs
that wheel with the extras the demo uses, so the Space runs before the package is on the package
index (``demo/requirements.txt`` names the published package, for afterwards).

Hugging Face installs a Space's requirements before it copies the Space's other files in, so a
path to the wheel beside them is not there yet: ``--space owner/name`` makes the requirement the
wheel's address in that Space (``.../resolve/main/<wheel>``), which pip downloads. Without it the
requirement is the path ``./<wheel>``, for ``pip install -r requirements.txt`` run in the folder
(trying it locally, or a host that copies the files first).

    python release/space.py [--space owner/name] [--wheel dist/<wheel>] [--out dist/space]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
OUT = ROOT / "dist" / "space"
EXTRAS = "diffusers,inference"
"""What the demo's catalogue runs: the bundled model (diffusers, torch) and Inference models."""
FILES = ("app.py", "catalogue.toml", "README.md")
_SPACE_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def requirement(wheel_name: str, space: str | None = None) -> str:
    """The requirements line that installs the wheel with the demo's extras."""
    if space is None:
        return f"./{wheel_name}[{EXTRAS}]"
    if not _SPACE_ID.match(space):
        raise ValueError(f"--space must look like owner/name, not {space!r}")
    url = f"https://huggingface.co/spaces/{space}/resolve/main/{wheel_name}"
    return f"gradio_diffusion_preview[{EXTRAS}] @ {url}"


def build_wheel(out: Path) -> Path:
    """The package's wheel, built from this checkout (its frontend must be built)."""
    if not (ROOT / "backend/gradio_diffusion_preview/templates/component/index.js").is_file():
        raise SystemExit("make space: the frontend is not built; run `make frontend` first.")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def assemble(out: Path, wheel: Path, space: str | None = None) -> Path:
    """Write the Space folder ``out`` (replacing it) around ``wheel``; returns ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(DEMO / name, out / name)
    shutil.copy2(wheel, out / wheel.name)
    (out / "requirements.txt").write_text(
        "# The package from the wheel beside this file, with the demo's extras (made by\n"
        "# `make space`; once the package is published, demo/requirements.txt names it instead).\n"
        f"{requirement(wheel.name, space)}\n"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", help="the Space's id, owner/name (see the module docstring)")
    parser.add_argument("--wheel", type=Path, help="the wheel to ship (default: build one)")
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        wheel = args.wheel or build_wheel(Path(temporary))
        folder = assemble(args.out, wheel, args.space)
    print(f"Space folder ready: {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    if args.space is None:
        print(
            "For Hugging Face, run again with --space owner/name (SPACE=owner/name with make): "
            "the Space installs its requirements before its other files are there."
        )


if __name__ == "__main__":
    main()
