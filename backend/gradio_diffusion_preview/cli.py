"""The command line: ``python -m gradio_diffusion_preview plugins [--json] [--no-models]``.

Lists the installed plugins with their versions, the backends they register, and each backend's
models and capabilities: as text for people, as JSON (the data ``list_plugins()`` returns) for
scripts. Warnings about plugins that failed to load go to stderr. Bad usage exits with 2, a
registry that cannot load (two plugins claiming one backend id, a misspelt hook) with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

PROG = "python -m gradio_diffusion_preview"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage (after printing why), 0 on -h
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: name a command, e.g. `{PROG} plugins`", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except BrokenPipeError:  # `... plugins | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="gradio-diffusion-preview: a Gradio component that streams "
        "text-to-image generation step by step, and its registry of backend plugins.",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins, their backends, models and capabilities",
        description="List installed plugins with their versions, the backends they register, "
        "and each backend's models and capabilities. DIFFUSION_PREVIEW_PLUGINS limits which "
        "third-party plugins load (comma-separated package names; empty loads none).",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON (list_plugins())")
    plugins.add_argument(
        "--no-models",
        dest="models",
        action="store_false",
        help="do not list models (listing may need a network or a cache)",
    )
    plugins.set_defaults(run=_plugins)
    return parser


def _plugins(args: argparse.Namespace) -> int:
    from pluggy import PluginValidationError

    from .plugins import DuplicateBackendError, list_plugins

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = list_plugins(include_models=args.models)
        except (DuplicateBackendError, PluginValidationError) as error:
            _print_warnings(caught)
            print(f"error: {error}", file=sys.stderr)
            return 1
    _print_warnings(caught)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_plugins(data, sys.stdout)
    return 0


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)


def write_plugins(plugins: list[dict[str, Any]], out: TextIO) -> None:
    """Write ``list_plugins()`` data as text for people."""
    if not plugins:
        out.write("No plugins loaded.\n")
        return
    for plugin in plugins:
        version = plugin["version"] or "(version unknown)"
        out.write(f"{plugin['distribution']} {version}  [plugin: {plugin['name']}]\n")
        if not plugin["backends"]:
            out.write("  (registers no backends)\n")
        for backend in plugin["backends"]:
            out.write(
                f"  backend {backend['id']}: {backend['display_name']} ({backend['location']})\n"
            )
            if "models" in backend:
                out.write(f"    models:  {_models(backend['models'])}\n")
            for line in _capabilities(backend["capabilities"]):
                out.write(f"    {line}\n")
        out.write("\n")


def _models(models: list[dict[str, Any]] | str) -> str:
    if isinstance(models, str):  # "unavailable: ..." when listing failed
        return models
    return ", ".join(m["id"] for m in models) or "(none listed)"


FEATURES = ("step_previews", "negative_prompt", "seed", "guidance", "cancel", "finish_early")


def _capabilities(caps: dict[str, Any]) -> list[str]:
    yes = [name for name in (*FEATURES, "any_model") if caps.get(name)]
    no = [name for name in FEATURES if not caps.get(name)]
    width, height = caps["default_size"]
    low, high = caps["steps_range"]
    lines = [
        f"can:     {', '.join(yes) or '-'}",
        f"cannot:  {', '.join(no) or '-'}",
        f"size:    {caps['min_size']}-{caps['max_size']} px, multiples of "
        f"{caps['size_multiple']}, default {width}x{height}",
        f"steps:   {low}-{high}, default {caps['default_steps']}; batch up to {caps['max_batch']}",
    ]
    if caps.get("guidance"):
        g_low, g_high = caps["guidance_range"]
        lines.append(f"guidance: {g_low:g}-{g_high:g}, default {caps['default_guidance']:g}")
    for name, description in (caps.get("options") or {}).items():
        lines.append(f"option:  {name}: {description}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
