"""Models shipped inside the wheel, so that the demo and the tests have real pictures offline.

Each model lives in its own subpackage with the code that defines what it was trained on (numpy
and Pillow only) and its diffusers folder; torch and diffusers are only needed to run it.
``resolve_model("bundled:shapes")`` is a bundled model's folder, for configuration files (a
policy's catalogue) that cannot know where the package is installed.
"""

from __future__ import annotations

PREFIX = "bundled:"
"""Names a bundled model where a model id goes (a catalogue's ``model = "bundled:shapes"``)."""
NAMES = ("shapes",)


def resolve_model(model: str | None) -> str | None:
    """``bundled:<name>`` as the bundled model's folder inside the installed package; any other
    model as given. Raises ``ValueError`` naming the bundled models for an unknown name."""
    if model is None or not model.startswith(PREFIX):
        return model
    name = model.removeprefix(PREFIX).strip()
    if name == "shapes":
        from .shapes import model_dir

        return str(model_dir())
    raise ValueError(
        f"No bundled model named {name!r}. Fix: use one of: "
        + ", ".join(PREFIX + known for known in NAMES)
        + "."
    )
