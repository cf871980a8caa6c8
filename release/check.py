"""``make release-check``: build the sdist and the wheel as a release does, then install each into
a fresh virtual environment and check that it works there.

1. In a clean copy of this checkout (no built frontend, no ``dist/``, no environments):
   ``gradio cc build --no-generate-docs``, as the release workflow runs it: the frontend built
   from its sources, then ``python -m build``: the sdist, then the wheel built from the sdist
   (so a file missing from the sdist shows up as a broken wheel). Both go to ``dist/release/``;
   both must carry the built frontend, and the wheel everything an install needs
   (``IN_WHEEL``). ``dist/release/clean-build.json`` records a digest of the sources they
   were built from, and then that step 3 passed: the test suite (``make test`` runs this
   first) installs this wheel in its Space folders rather than build its own, and
   tests/project/test_packaging.py does not install and render it a second time.
2. ``twine check --strict`` (twine lives in a tools environment under ``build/``, made once).
3. For each of the two: a fresh virtual environment, ``pip install <artifact>`` with its declared
   dependencies (pip's cache is reused; bytecode is not compiled, which halves the time; torch is
   not installed, it is no base dependency), then: the package imports from that environment
   (not from this checkout), and a page with a ``DiffusionPreview`` showing an image renders in
   Chromium.

Run it with the development environment's Python (Playwright drives Debian's Chromium).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gradio_diffusion_preview"
OUT = ROOT / "dist" / "release"
TOOLS = ROOT / "build" / "release-tools"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FRONTEND = ("templates/component/index.js", "templates/component/style.css")
STAMP = "clean-build.json"
IN_WHEEL = (
    *FRONTEND,
    "templates/example/index.js",
    "py.typed",
    # the plugin guide's example without previews, for pip users to copy (issue #24)
    *(
        f"examples/http-image-service/{name}"
        for name in ("image_service.py", "http_image_backend.py", "test_http_image_backend.py")
    ),
    # the bundled shapes model (issue #9): weights, configs, tokenizer, preview factors, card
    *(
        f"bundled/shapes/model/{name}"
        for name in (
            "model_index.json",
            "diffusion_preview.json",
            "latent_rgb.json",
            "README.md",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/tokenizer.json",
            "tokenizer/tokenizer_config.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
        )
    ),
)
"""What an install needs, under the package's folder in the wheel (``FRONTEND`` also in the
sdist): the built frontend, the type marker, the plugin guide's example, the bundled model."""
# What a clean checkout does not have: build outputs, environments, caches. Every name starting
# with ".venv" is left out too: `make test`'s other environments (.venv-py310, .venv-py313,
# .venv-gradio5, ...) are about 2 GB, and copying them took most of the time.
NOT_IN_CHECKOUT = {
    ".git",
    ".venv",
    ".hypothesis",
    "node_modules",
    "dist",
    "build",
    "templates",
    "test-output",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".gradio",
}
PAGE = """
import sys
import gradio as gr
import PIL.Image
import gradio_diffusion_preview as gdp

print("IMPORTED", gdp.__file__, flush=True)
with gr.Blocks() as demo:
    gdp.DiffusionPreview(value=PIL.Image.new("RGB", (64, 48), (200, 120, 40)), label="Released")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def version() -> str:
    import tomllib  # Python 3.11+: the tests' 3.10 tier reads the stamp, never the version

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def run(command: list[str], **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(
            f"release-check: `{' '.join(map(str, command))}` failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def left_out(_folder: str, names: list[str]) -> list[str]:
    """The names a clean checkout lacks (``shutil.copytree``'s ``ignore``)."""
    return [
        name
        for name in names
        if name in NOT_IN_CHECKOUT or name.startswith(".venv") or name.endswith(".egg-info")
    ]


def copy_checkout(dest: Path, root: Path = ROOT) -> None:
    """A clean copy of ``root`` at ``dest``, its frontend's ``node_modules`` linked, not copied."""
    node_modules = root / "frontend" / "node_modules"
    if not (node_modules / "@gradio" / "preview").is_dir():
        raise SystemExit(
            "release-check: frontend/node_modules is missing: run `cd frontend && npm ci` "
            "(make frontend)"
        )
    shutil.copytree(root, dest, ignore=left_out)
    (dest / "frontend" / "node_modules").symlink_to(node_modules, target_is_directory=True)


def sources_digest(root: Path = ROOT) -> str:
    """A digest of every file a clean copy of ``root`` holds (path and content): a build
    stamped with it was made from these very sources."""
    digest = hashlib.sha256()
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(set(folders) - set(left_out(folder, folders)))
        for name in sorted(set(files) - set(left_out(folder, files))):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build(out: Path) -> tuple[Path, Path]:
    """The sdist and the wheel (made from the sdist) of a clean copy of this checkout, its
    frontend built there from its sources; checked to carry it, and stamped (``STAMP``)."""
    digest = sources_digest()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stem = f"{PACKAGE}-{version()}"
    sdist, wheel = out / f"{stem}.tar.gz", out / f"{stem}-py3-none-any.whl"
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="release-checkout-") as temporary:
        checkout = Path(temporary) / "checkout"
        copy_checkout(checkout)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            # The package imported from the copy, not from an editable install, so that the
            # frontend build writes its templates into the copy.
            "PYTHONPATH": str(checkout / "backend"),
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        run([str(bin_dir / "gradio"), "cc", "build", "--no-generate-docs"], cwd=checkout,
            env=env, timeout=900)  # fmt: skip
        for artifact in (sdist, wheel):
            shutil.move(checkout / "dist" / artifact.name, artifact)
    with tarfile.open(sdist) as tar, zipfile.ZipFile(wheel) as zipped:
        in_sdist, in_wheel = set(tar.getnames()), set(zipped.namelist())
    for name in FRONTEND:
        if f"{stem}/backend/{PACKAGE}/{name}" not in in_sdist:
            raise SystemExit(f"release-check: {sdist.name} lacks {name}")
    missing = [name for name in IN_WHEEL if f"{PACKAGE}/{name}" not in in_wheel]
    if missing:
        raise SystemExit(f"release-check: {wheel.name} lacks {', '.join(missing)}")
    stamp = {"sources": digest, "sdist": sdist.name, "wheel": wheel.name}
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return sdist, wheel


def stamped_wheel(out: Path = OUT, checked: bool = False) -> Path | None:
    """The wheel in ``out`` when its stamp says it was built from the sources here now (and,
    with ``checked``, that both artifacts then installed, imported and rendered: ``main``)."""
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return None
    wheel = out / stamp.get("wheel", "")
    if stamp.get("sources") != sources_digest() or not wheel.is_file():
        return None
    if checked and stamp.get("installed_and_rendered") != [wheel.name, stamp.get("sdist")]:
        return None
    return wheel


def stamp_checked(out: Path, artifacts: list[Path]) -> None:
    """Records in the build's stamp that ``artifacts`` installed, imported and rendered."""
    stamp = json.loads((out / STAMP).read_text())
    stamp["installed_and_rendered"] = [artifact.name for artifact in artifacts]
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


def twine_check(paths: list[Path]) -> None:
    twine = TOOLS / "bin" / "twine"
    if not twine.exists():
        run([sys.executable, "-m", "venv", str(TOOLS)])
        run([str(TOOLS / "bin" / "pip"), "install", "--quiet", "twine"], timeout=600)
    print(run([str(twine), "check", "--strict", *map(str, paths)]).strip())


def install(artifact: Path, venv: Path) -> Path:
    """A fresh environment at ``venv`` with ``artifact`` and its dependencies; its Python."""
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    run([*pip, "--no-compile", str(artifact)], timeout=900)
    return python


def check_imports(python: Path, venv: Path) -> None:
    code = (
        "import importlib.util, gradio_diffusion_preview as gdp\n"
        "from gradio_diffusion_preview.bundled.shapes import model_dir\n"
        "print(gdp.__file__)\n"
        "print((model_dir() / 'model_index.json').is_file())\n"
        "print(importlib.util.find_spec('torch') is None)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    located, bundled, torch_free = run([str(python), "-c", code], env=env).split()
    if not Path(located).resolve().is_relative_to(venv.resolve()):
        raise SystemExit(f"release-check: imported {located}, not the installed package")
    if bundled != "True":
        raise SystemExit("release-check: the bundled shapes model is missing from the install")
    if torch_free != "True":
        raise SystemExit("release-check: the base install pulled torch; it belongs in an extra")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_renders(python: Path, workdir: Path, screenshot: Path) -> None:
    """Serve a page with a DiffusionPreview from ``python``'s environment; Chromium shows it."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    app = workdir / "page.py"
    app.write_text(PAGE)
    log = workdir / "page.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(python), str(app), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, server, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 900, "height": 700})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.get_by_test_id("diffusion-preview").wait_for(timeout=60_000)
            image = page.get_by_test_id("final-image")
            image.wait_for(timeout=60_000)
            width = image.evaluate("img => img.naturalWidth")
            loading = page.get_by_text("Loading...").count()
            page.screenshot(path=str(screenshot))
            browser.close()
        if width != 64 or loading or errors:
            raise SystemExit(
                f"release-check: the component did not render (image width {width}, "
                f"{loading} 'Loading...', script errors {errors})"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, server: subprocess.Popen, log: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"release-check: the page's app exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"release-check: no answer at {url}:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the artifacts go")
    args = parser.parse_args()
    started = time.monotonic()
    sdist, wheel = build(args.out)
    print(f"built {sdist.name} and {wheel.name}")
    twine_check([sdist, wheel])
    with tempfile.TemporaryDirectory(prefix="release-check-") as temporary:
        for artifact in (wheel, sdist):
            began = time.monotonic()
            work = Path(temporary) / artifact.name
            work.mkdir()
            venv = work / "venv"
            python = install(artifact, venv)
            check_imports(python, venv)
            check_renders(python, work, args.out / f"{artifact.name}.png")
            print(f"{artifact.name}: installs, imports, renders ({time.monotonic() - began:.0f} s)")
    stamp_checked(args.out, [wheel, sdist])
    print(f"release-check passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
