"""The ``scheduler`` option: short sampler names mapped to diffusers scheduler classes.

Each run gets its own scheduler instance, made with ``from_config`` from the model's own
scheduler configuration (so the training noise schedule carries over), so runs never share
scheduler state and the loaded pipeline's scheduler is never modified.
"""

from __future__ import annotations

from typing import Any

# name -> (diffusers class name, config overrides, description)
SCHEDULERS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "default": (None, {}, "the model's own scheduler"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler ancestral"),
    "dpm++": ("DPMSolverMultistepScheduler", {}, "DPM-Solver++ 2M"),
    "dpm++_karras": (
        "DPMSolverMultistepScheduler",
        {"use_karras_sigmas": True},
        "DPM-Solver++ 2M with Karras sigmas",
    ),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}, "PNDM (PLMS)"),
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
}
FLOW_SCHEDULERS: dict[str, str | None] = {
    "default": None,
    "euler": "FlowMatchEulerDiscreteScheduler",
}
ALIASES = {
    "dpmpp": "dpm++",
    "dpmpp_2m": "dpm++",
    "dpm++_2m": "dpm++",
    "euler_ancestral": "euler_a",
    "plms": "pndm",
    "dpmpp_2m_karras": "dpm++_karras",
    "dpm++_2m_karras": "dpm++_karras",
}


class SchedulerChoiceError(ValueError):
    """A scheduler name this model cannot use; ``str()`` names the choices."""


def canonical_name(name: str | None) -> str:
    """The canonical scheduler name for an option value; raises for unknown names."""
    key = (name or "default").strip().lower()
    key = ALIASES.get(key, key)
    if key not in SCHEDULERS:
        raise SchedulerChoiceError(
            f"unknown scheduler {name!r}; use one of: {', '.join(SCHEDULERS)}"
        )
    return key


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
            "huggingface/diffusers#12771); use 'dpm++' (the same solver without Karras sigmas) "
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
