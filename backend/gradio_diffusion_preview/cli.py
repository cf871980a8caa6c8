"""The command line: ``python -m gradio_diffusion_preview plugins [--json] [--no-models]`` and
``python -m gradio_diffusion_preview serve {config,run} [BACKEND] [options]``.

``plugins`` lists the installed plugins with their versions, the backends they register, and
each backend's models and capabilities: as text for people, as JSON (the data ``list_plugins()``
returns) for scripts. Plugins or backends that were skipped or disabled (a plugin that failed to
load, two plugins claiming one backend id) are listed as problems; with ``--json`` they go to
stderr as warnings. ``serve`` prints the Ray Serve config file that hosts a backend on a pool of
replicas, or runs it (``serving``; docs/scaling.md). Bad usage exits with 2, a registry that
cannot load (a misspelt hook) with 1.
"""

from __future__ import annotations

import argparse
import contextlib
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
    _add_serve(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="host a backend on Ray Serve replicas: print the Serve config, or run it",
        description="Host a registered backend on a pool of Ray Serve replicas (pip install "
        "'gradio-diffusion-preview[ray]'). 'config' prints a Serve config file (for `serve "
        "run`, `serve deploy` or a KubeRay RayService); 'run' runs it on the Ray cluster. The "
        "Gradio app reaches it through the 'ray' backend (docs/scaling.md).",
    )
    serve.add_argument("action", choices=("config", "run"), help="print the config, or run it")
    serve.add_argument(
        "backend", nargs="?", default="diffusers", help="the backend to host (default: diffusers)"
    )
    serve.add_argument("--app", default=None, help="the Serve application's name")
    replicas = serve.add_mutually_exclusive_group()
    replicas.add_argument("--replicas", type=int, default=None, help="a fixed number (default 1)")
    replicas.add_argument(
        "--autoscale", type=int, nargs=2, metavar=("MIN", "MAX"), help="autoscale between these"
    )
    serve.add_argument(
        "--target-ongoing-requests",
        type=float,
        default=None,
        help="with --autoscale: runs in flight per replica to aim for (default 1)",
    )
    for flag, kind, text in (
        ("--max-ongoing-requests", int, "runs one replica works on at once (default 1)"),
        ("--max-queued-requests", int, "runs that may wait for a replica; -1: no bound (default)"),
        ("--num-gpus", float, "GPUs per replica (default 1; 0 on CPU machines)"),
        ("--num-cpus", float, "CPUs per replica (default 1)"),
        ("--retry-after", float, "seconds a run refused by a full queue is told to wait"),
    ):
        serve.add_argument(flag, type=kind, default=None, help=text)
    serve.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument for the backend on each replica; VALUE is read as JSON when "
        "it parses, e.g. --option device=cuda --option 'models=[\"/models/sd15\"]'",
    )
    serve.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE", help="an extra plugin module"
    )
    serve.add_argument(
        "--warmup",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model each replica loads before it takes runs",
    )
    serve.add_argument("--preview-format", choices=("array", "jpeg"), default=None)
    serve.add_argument("--image-format", choices=("array", "png"), default=None)
    serve.add_argument(
        "--address", default=None, help="run: the Ray cluster (default: RAY_ADDRESS, else local)"
    )
    serve.add_argument(
        "--non-blocking",
        action="store_true",
        help="run: deploy and return, leaving the application on the cluster",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from .serving.options import settings_from_arguments

    try:
        settings = settings_from_arguments(args)
    except ValueError as error:
        print(f"{PROG} serve: error: {error}", file=sys.stderr)
        return 2
    if args.action == "config":
        sys.stdout.write(settings.config_yaml())
        return 0
    try:
        from .serving.app import connect, run
        from .serving.ctrl_c import wait_for_ctrl_c
    except ImportError as error:
        print(
            f"error: `serve run` needs Ray Serve ({error}). Fix: pip install "
            "'gradio-diffusion-preview[ray]'",
            file=sys.stderr,
        )
        return 1
    import ray

    where = args.address or os.environ.get("RAY_ADDRESS")
    if args.non_blocking and not where and not ray.is_initialized():
        print(
            f"{PROG} serve: error: --non-blocking needs a running Ray cluster: a new local one "
            "would stop when this command returns. Fix: start one (`ray start --head`) and "
            "pass --address auto (or set RAY_ADDRESS).",
            file=sys.stderr,
        )
        return 2
    where = connect(args.address)
    gpus = ray.cluster_resources().get("GPU", 0)
    if args.num_gpus is None and not gpus:
        settings = settings.model_copy(update={"num_gpus": 0.0})
        print(
            "The Ray cluster has no GPUs: each replica runs on CPU (--num-gpus 0).",
            file=sys.stderr,
        )
    elif settings.num_gpus > gpus:
        print(
            f"{PROG} serve: error: each replica asks for {settings.num_gpus:g} GPU "
            f"(--num-gpus) and the Ray cluster has {gpus:g}, so no replica could start. Fix: "
            "pass --num-gpus 0 to run the replicas on CPU, or add GPU machines to the cluster "
            "(`ray start --address=<head>:6379` on each).",
            file=sys.stderr,
        )
        return 2
    print(
        f"Serving backend '{settings.backend}' as the Ray Serve application '{settings.app}' "
        f"on {where}. The Gradio app reaches it through the 'ray' backend "
        "(DIFFUSION_PREVIEW_RAY_URL=auto; docs/scaling.md).",
        file=sys.stderr,
        flush=True,
    )
    try:
        run(settings, address=args.address, blocking=False)
        if not args.non_blocking:
            print(
                f"The application '{settings.app}' is running; Ctrl-C removes it.",
                file=sys.stderr,
                flush=True,
            )
            wait_for_ctrl_c()
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            from ray import serve

            serve.delete(settings.app)
        print(f"Removed the application '{settings.app}'.", file=sys.stderr)
        return 130
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from pluggy import PluginValidationError

    from .plugins import get_registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            registry = get_registry()
            data = registry.describe(include_models=args.models)
        except PluginValidationError as error:
            _print_warnings(caught)
            print(f"error: {error}", file=sys.stderr)
            return 1
    problems = registry.problems
    # The registry's problems are part of the listing (as text) or warnings (with --json);
    # any other warning goes to stderr.
    _print_warnings([w for w in caught if str(w.message) not in problems])
    if args.json:
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_plugins(data, sys.stdout, problems)
    return 0


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)


def write_plugins(plugins: list[dict[str, Any]], out: TextIO, problems: Sequence[str] = ()) -> None:
    """Write ``list_plugins()`` data, and the registry's problems, as text for people."""
    if not plugins:
        out.write("No plugins loaded.\n")
    for plugin in plugins:
        version = plugin["version"] or "(version unknown)"
        out.write(f"{plugin['distribution']} {version}  [plugin: {plugin['name']}]\n")
        if not plugin["backends"]:
            out.write("  (registers no backends)\n")
        for backend in plugin["backends"]:
            out.write(
                f"  backend {backend['id']}: {backend['display_name']} ({backend['location']})\n"
            )
            endpoint = backend.get("endpoint")
            if endpoint:
                out.write(f"    endpoint: {_endpoint(endpoint)}\n")
            availability = backend.get("availability") or {}
            if availability.get("state", "usable") != "usable":
                out.write(
                    f"    status:  {availability['state']}: {availability.get('message', '')}\n"
                )
            if "models" in backend:
                out.write(f"    models:  {_models(backend['models'])}\n")
                for line in _model_lines(backend["models"]):
                    out.write(f"      {line}\n")
            for line in _capabilities(backend["capabilities"], backend.get("options_schema")):
                out.write(f"    {line}\n")
        out.write("\n")
    for problem in problems:
        out.write(f"problem: {problem}\n")


def _models(models: list[dict[str, Any]] | str) -> str:
    if isinstance(models, str):  # "unavailable: ..." when listing failed
        return models
    return ", ".join(m["id"] for m in models) or "(none listed)"


def _endpoint(endpoint: dict[str, Any]) -> str:
    """A remote endpoint's configuration, as ``Endpoint.public()`` gives it (no secrets)."""
    parts = [str(endpoint.get("url", "?"))]
    if endpoint.get("username"):
        parts.append(f"user {endpoint['username']}, password {endpoint.get('password')}")
    parts.append(f"token {endpoint.get('token', 'not set')}")
    if endpoint.get("models"):
        parts.append(f"models {', '.join(endpoint['models'])}")
    return "; ".join(parts)


def _model_lines(models: list[dict[str, Any]] | str) -> list[str]:
    """One line per model that carries its own defaults and limits."""
    if isinstance(models, str):
        return []
    lines = []
    for model in models:
        own = {k: v for k, v in (model.get("defaults") or {}).items() if v is not None}
        if own:
            described = ", ".join(f"{name}={value}" for name, value in own.items())
            lines.append(f"model {model['id']}: {described}")
    return lines


FEATURES = (
    "step_events",
    "step_previews",
    "negative_prompt",
    "seed",
    "guidance",
    "cancel",
    "finish_early",
)


def _capabilities(caps: dict[str, Any], schema: dict[str, Any] | None = None) -> list[str]:
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
        allowed = _allowed(name, caps, schema)
        lines.append(f"option:  {name}: {description}{allowed}")
    return lines


def _allowed(name: str, caps: dict[str, Any], schema: dict[str, Any] | None) -> str:
    """What a typed option takes, for the listing: its choices, or its range."""
    choices = (caps.get("option_choices") or {}).get(name)
    if choices:
        return f" [{', '.join(choices)}]"
    field = ((schema or {}).get("properties") or {}).get(name) or {}
    low, high = field.get("minimum"), field.get("maximum")
    if low is not None and high is not None:
        return f" [{low:g} to {high:g}]"
    return ""


if __name__ == "__main__":
    sys.exit(main())
