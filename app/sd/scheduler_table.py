"""Scheduler names users pick, and the diffusers class of each (data only: no torch import)."""

# name -> (diffusers class, fixed config overrides)
SCHEDULERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm_2": ("KDPM2DiscreteScheduler", {}),
    "dpm_2_ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
}

# sigmas choice -> config flag; "default" keeps the class's own schedule.
SIGMAS = {"default": None, "karras": "use_karras_sigmas", "exponential": "use_exponential_sigmas",
          "beta": "use_beta_sigmas"}
SPACINGS = ("default", "leading", "linspace", "trailing")

# Classes whose constructor has no use_*_sigmas flags (checked against diffusers by the tests).
NO_SIGMA_CHOICE = {"EulerAncestralDiscreteScheduler", "DDIMScheduler", "DDPMScheduler", "PNDMScheduler"}


def overrides(name, sigmas="default", spacing="default"):
    """The config overrides for a choice; raises ValueError for unsupported combinations."""
    class_name, fixed = SCHEDULERS[name]
    out = dict(fixed)
    if sigmas != "default":
        if class_name in NO_SIGMA_CHOICE:
            raise ValueError(f"{sigmas!r} sigmas are not supported by {name!r} ({class_name}); "
                             "use 'default' or another scheduler")
        out[SIGMAS[sigmas]] = True
    if spacing != "default":
        out["timestep_spacing"] = spacing
    return out
