"""From the ``serve`` command line to ``ServeSettings``: flags, ``--option NAME=VALUE`` pairs
(values read as JSON when they parse) and errors that name the flag and the fix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from .settings import DEFAULT_APP, Autoscaling, ServeSettings

_FLAGS = {
    "num_replicas": "--replicas",
    "autoscaling": "--autoscale",
    "max_ongoing_requests": "--max-ongoing-requests",
    "max_queued_requests": "--max-queued-requests",
    "num_gpus": "--num-gpus",
    "num_cpus": "--num-cpus",
    "retry_after": "--retry-after",
    "backend_options": "--option",
    "app": "--app",
}


def parse_option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``, the value read as JSON when it parses (numbers, lists, true/false),
    else kept as text. Raises ``ValueError`` naming the problem."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(
            f"--option {text!r} is not NAME=VALUE. Fix: e.g. --option device=cuda or "
            "--option 'models=[\"/models/sd15\"]'"
        )
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def settings_from_arguments(args: argparse.Namespace) -> ServeSettings:
    """The settings the ``serve`` flags ask for; ``ValueError`` naming the flag otherwise."""
    fields: dict[str, Any] = {
        "backend": args.backend,
        "app": args.app or DEFAULT_APP,
        "backend_options": dict(parse_option(text) for text in args.option),
        "plugins": list(args.plugin),
        "warmup": list(args.warmup),
    }
    if args.autoscale:
        low, high = args.autoscale
        scaling = {"min_replicas": low, "max_replicas": high}
        if args.target_ongoing_requests is not None:
            scaling["target_ongoing_requests"] = args.target_ongoing_requests
        fields["autoscaling"] = scaling
    elif args.target_ongoing_requests is not None:
        raise ValueError("--target-ongoing-requests needs --autoscale MIN MAX")
    for name in (
        "max_ongoing_requests",
        "max_queued_requests",
        "num_gpus",
        "num_cpus",
        "retry_after",
        "preview_format",
        "image_format",
    ):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.replicas is not None:
        fields["num_replicas"] = args.replicas
    try:
        return ServeSettings(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        flag = _FLAGS.get(loc[0], "--" + loc[0].replace("_", "-")) if loc else "a flag"
        if loc and loc[0] == "autoscaling" and len(loc) > 1 and loc[1] in Autoscaling.model_fields:
            flag = "--target-ongoing-requests" if loc[1] == "target_ongoing_requests" else flag
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{flag}: {message}. Fix: see --help.") from None
