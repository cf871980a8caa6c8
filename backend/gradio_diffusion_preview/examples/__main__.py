"""``python -m gradio_diffusion_preview.examples [NAME FOLDER]``: list the shipped examples, or
copy one into a new folder to start from it."""

from __future__ import annotations

import sys

from . import copy_example, example_names


def main(argv: list[str]) -> int:
    if not argv:
        print("Examples (copy one with: python -m gradio_diffusion_preview.examples NAME FOLDER):")
        for name in example_names():
            print(f"  {name}")
        return 0
    if len(argv) != 2:
        print("Usage: python -m gradio_diffusion_preview.examples [NAME FOLDER]", file=sys.stderr)
        return 2
    try:
        target = copy_example(*argv)
    except (ValueError, FileExistsError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"Copied the example {argv[0]!r} into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
