"""The ``scheduler`` option: AUTOMATIC1111's sampler names mapped to diffusers scheduler classes.

Each run gets its own scheduler instance, made with ``from_config`` from the model's own
scheduler configuration (so the training noise schedule carries over), so runs never share
scheduler state and the loaded pipeline's scheduler is never modified.
"""

from __future__ import annotations

from typing import Any

# name (AUTOMATIC1111's, as people know them) -> (diffusers class name, config overrides,
# description)
SCHEDULERS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "Default": (None, {}, "the model's own scheduler"),
    "Euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}, "Euler ancestral"),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}, "DPM-Solver++ 2M"),
    "DPM++ 2M Karras": (
        "DPMSolverMultistepScheduler",
        {"use_karras_sigmas": True},
        "DPM-Solver++ 2M with Karras sigmas",
    ),
    "DDIM": ("DDIMScheduler", {}, "DDIM"),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}, "PNDM (PLMS)"),
    "LMS": ("LMSDiscreteScheduler", {}, "LMS"),
    "UniPC": ("UniPCMultistepScheduler", {}, "UniPC"),
}
FLOW_SCHEDULERS: dict[str, str | None] = {
    "Default": None,
    "Euler": "FlowMatchEulerDiscreteScheduler",
}
ALIASES = {
    "default": "Default",
    "automatic": "Default",
    "euler": "Euler",
    "euler_a": "Euler a",
    "euler_ancestral": "Euler a",
    "dpm++": "DPM++ 2M",
    "dpmpp": "DPM++ 2M",
    "dpmpp_2m": "DPM++ 2M",
    "dpm++_2m": "DPM++ 2M",
    "dpm++_karras": "DPM++ 2M Karras",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpm++_2m_karras": "DPM++ 2M Karras",
    "ddim": "DDIM",
    "pndm": "PLMS",
    "plms": "PLMS",
    "lms": "LMS",
    "unipc": "UniPC",
}
"""The names this option took before it used AUTOMATIC1111's (``euler_a``, ``dpm++_karras``),
and ComfyUI-style ones: still accepted from API users, matched without regard to case."""


class SchedulerChoiceError(ValueError):
    """A scheduler name this model cannot use; ``str()`` names the choices."""


def canonical_name(name: str | None) -> str:
    """The canonical (AUTOMATIC1111) scheduler name for an option value or an old alias;
    raises for unknown names."""
    key = (name or "Default").strip().casefold()
    for known in SCHEDULERS:
        if known.casefold() == key:
            return known
    if key in ALIASES:
        return ALIASES[key]
    raise SchedulerChoiceError(f"unknown scheduler {name!r}; use one of: {', '.join(SCHEDULERS)}")


def sampler_name(scheduler: Any) -> str:
    """The AUTOMATIC1111 name of a scheduler instance (what a run really used, the model's
    default included): ``Euler a``, ``DPM++ 2M Karras``, ``PLMS``; a scheduler A1111 has no
    name for is named by its class, without "Scheduler"."""
    class_name = type(scheduler).__name__
    karras = bool(getattr(scheduler, "config", {}).get("use_karras_sigmas"))
    if class_name == "FlowMatchEulerDiscreteScheduler":
        return "Euler"
    for name, (known, overrides, _) in SCHEDULERS.items():
        if known == class_name and bool(overrides.get("use_karras_sigmas")) == karras:
            return name
    base = class_name.removesuffix("Scheduler")
    return f"{base} Karras" if karras else base


def make_scheduler(base: Any, name: str | None) -> Any:
    """A fresh scheduler for one run: ``name``'s class configured from ``base``'s config."""
    import diffusers

    from .x0 import is_flow_matching

    key = canonical_name(name)
    if is_flow_matching(base):
        if key not in FLOW_SCHEDULERS:
            raise SchedulerChoiceError(
                f"scheduler {key!r} does not work with this flow-matching model "
                f"({type(base).__name__}); use one of: {', '.join(FLOW_SCHEDULERS)}"
            )
        class_name, overrides = FLOW_SCHEDULERS[key], {}
    else:
        class_name, overrides, _ = SCHEDULERS[key]
    cls = type(base) if class_name is None else getattr(diffusers, class_name)
    try:
        scheduler = cls.from_config(base.config, **overrides)
    except ImportError as error:  # LMS needs scipy, for one
        missing = "scipy" if "scipy" in str(error) else "a missing library"
        raise SchedulerChoiceError(
            f"scheduler {key!r} needs {missing}: `pip install {missing}`, or choose another "
            "scheduler"
        ) from None
    _refuse_known_crash(key, scheduler)
    return scheduler


def _refuse_known_crash(key: str, scheduler: Any) -> None:
    """DPM-Solver++ with Karras sigmas on a cosine (``squaredcos_cap_v2``) noise schedule
    repeats its first timestep, starts one step in and fails at the last step with an
    ``IndexError`` at any step count (diffusers issue #12771, open in 0.42): refuse it before
    the run, naming a sampler that works."""
    config = scheduler.config
    if (
        type(scheduler).__name__ == "DPMSolverMultistepScheduler"
        and config.get("use_karras_sigmas")
        and config.get("beta_schedule") == "squaredcos_cap_v2"
    ):
        raise SchedulerChoiceError(
            f"scheduler {key!r} fails with this model's cosine noise schedule (a diffusers bug: "
            "huggingface/diffusers#12771); use 'DPM++ 2M' (the same solver without Karras sigmas) "
            "or another scheduler"
        )


def count_steps(scheduler: Any, steps: int) -> int:
    """How many denoising iterations (step callbacks) ``steps`` gives with ``scheduler``: PNDM
    repeats its first timestep and second-order samplers evaluate twice, so it can differ."""
    probe = type(scheduler).from_config(scheduler.config)
    try:
        probe.set_timesteps(steps)
    except Exception:
        try:  # flow-matching schedulers with resolution-dependent shifting need ``mu``
            probe.set_timesteps(steps, mu=1.0)
        except Exception:
            return steps
    return len(probe.timesteps)
