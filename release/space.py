"""``make space``: assemble a ready Hugging Face Space folder, ``dist/space/``.

The folder holds the demo (``app.py``, ``catalogue.toml``), a ``README.md`` with the Space's front
matter (from ``demo/README.md``), the package's wheel, and a ``requirements.txt`` that installs
that wheel with the extras the demo uses, so the Space runs before the package is on the package
index (``demo/requirements.txt`` names the published package, pinned, for afterwards).

``--hardware`` says which Space (docs/deploy.md): ``cpu`` (the default: torch's CPU build from
PyTorch's CPU index, ``demo/requirements.txt``), ``gpu`` (PyPI's CUDA torch,
``demo/requirements-gpu.txt``) or ``inference`` (no torch: ``demo/requirements-inference.txt``,
with ``demo/catalogue-inference.toml`` as the folder's ``catalogue.toml``). Each keeps its
requirements file's other lines (the torch pin and index) and sets the front matter's
``suggested_hardware``.

Hugging Face installs a Space's requirements before it copies the Space's other files in, so a
path to the wheel beside them is not there yet: ``--space owner/name`` makes the requirement the
wheel's address in that Space (``.../resolve/main/<wheel>``), which pip downloads. Without it the
requirement is the path ``./<wheel>``, for ``pip install -r requirements.txt`` run in the folder
(trying it locally, or a host that copies the files first).

    python release/space.py [--space owner/name] [--hardware cpu|gpu|inference]
                            [--wheel dist/<wheel>] [--out dist/space]
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
FILES = ("app.py", "README.md")
HARDWARE = {
    # name: (requirements file in demo/, catalogue file in demo/, front matter's hardware)
    "cpu": ("requirements.txt", "catalogue.toml", "cpu-basic"),
    "gpu": ("requirements-gpu.txt", "catalogue.toml", "t4-small"),
    "inference": ("requirements-inference.txt", "catalogue-inference.toml", "cpu-basic"),
}
_SPACE_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_PACKAGE_LINE = re.compile(r"^gradio-diffusion-preview\[([\w,]+)\]==\S+$")


def requirement(wheel_name: str, space: str | None = None, extras: str = EXTRAS) -> str:
    """The requirements line that installs the wheel with ``extras``."""
    if space is None:
        return f"./{wheel_name}[{extras}]"
    if not _SPACE_ID.match(space):
        raise ValueError(f"--space must look like owner/name, not {space!r}")
    url = f"https://huggingface.co/spaces/{space}/resolve/main/{wheel_name}"
    return f"gradio_diffusion_preview[{extras}] @ {url}"


def requirements(wheel_name: str, space: str | None = None, hardware: str = "cpu") -> str:
    """The ``hardware`` Space's requirements (its file in demo/) with the published package's
    line replaced by the wheel's, with the same extras; the other lines (torch's pin and
    index) kept as they are."""
    lines = []
    for line in (DEMO / HARDWARE[hardware][0]).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        package = _PACKAGE_LINE.match(line.strip())
        lines.append(requirement(wheel_name, space, package[1]) if package else line)
    return "\n".join(lines) + "\n"


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


def assemble(out: Path, wheel: Path, space: str | None = None, hardware: str = "cpu") -> Path:
    """Write the ``hardware`` Space's folder ``out`` (replacing it) around ``wheel``; returns
    ``out``."""
    if hardware not in HARDWARE:
        raise ValueError(f"--hardware must be one of {', '.join(HARDWARE)}, not {hardware!r}")
    requirements_file, catalogue, suggested = HARDWARE[hardware]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(DEMO / name, out / name)
    shutil.copy2(DEMO / catalogue, out / "catalogue.toml")
    readme = out / "README.md"
    readme.write_text(
        re.sub(
            r"(?m)^suggested_hardware: .*$", f"suggested_hardware: {suggested}", readme.read_text()
        )
    )
    shutil.copy2(wheel, out / wheel.name)
    (out / "requirements.txt").write_text(
        f"# The {hardware} Space's requirements (demo/{requirements_file}) with the package from\n"
        "# the wheel beside this file (made by `make space`; once the package is published,\n"
        f"# demo/{requirements_file} names it instead).\n"
        + requirements(wheel.name, space, hardware)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", help="the Space's id, owner/name (see the module docstring)")
    parser.add_argument(
        "--hardware", choices=sorted(HARDWARE), default="cpu", help="which Space (see above)"
    )
    parser.add_argument("--wheel", type=Path, help="the wheel to ship (default: build one)")
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        wheel = args.wheel or build_wheel(Path(temporary))
        folder = assemble(args.out, wheel, args.space, args.hardware)
    print(f"Space folder ready: {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    if args.space is None:
        print(
            "For Hugging Face, run again with --space owner/name (SPACE=owner/name with make): "
            "the Space installs its requirements before its other files are there."
        )


if __name__ == "__main__":
    main()
