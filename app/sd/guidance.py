"""The samplers' one seam for extra guidance (ControlNet and the like).

A guide is asked, at every U-Net call, for extra keyword arguments to it; the sampler adds up
what several guides return (residuals add, as in diffusers' MultiControlNetModel). CFG itself
stays in the sampler: guides see the model input exactly as the U-Net does (the CFG batch when
guidance is on). Both samplers use this seam: diffusers sampling says where it is by step index,
ComfyUI sampling by sigma (`At`); each guide kind reads the one its maker was bound for
(the maker's context has "sampling": "diffusers" or "comfyui").
"""
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class At:
    """Where the sampler is: step index and step count (diffusers sampling), or sigma (ComfyUI)."""
    step: int = 0
    total: int = 1
    sigma: float = None


class Guide:
    def unet_kwargs(self, at, t, model_in, embeds):
        """Extra U-Net kwargs for this call (an empty dict adds nothing)."""
        return {}


def merge(kwargs, extra):
    """Add one guide's U-Net kwargs into kwargs: tensors and tuples of tensors are summed."""
    for name, value in extra.items():
        if name not in kwargs or kwargs[name] is None:
            kwargs[name] = value
        elif isinstance(value, (tuple, list)):
            kwargs[name] = tuple(a + b for a, b in zip(kwargs[name], value))
        else:
            kwargs[name] = kwargs[name] + value
    return kwargs


def step_kwargs(guides, at, t, model_in, embeds):
    kwargs = {}
    for guide in guides:
        merge(kwargs, guide.unet_kwargs(at, t, model_in, embeds))
    return kwargs


# Makers turn what a conditioning carries (conditioning.guides) into bound Guide objects while
# the sampler runs: {kind: maker(env, spec, context) -> context manager yielding a Guide}.
MAKERS = {}


def specs_of(positive, negative):
    """The guide specs of both conditionings, each once (ApplyControlNet puts one on both)."""
    return positive.guides + tuple(g for g in negative.guides if g not in positive.guides)


@contextmanager
def bound(env, specs, context):
    """Enter every guide spec's maker; yields the list of Guide objects."""
    with ExitStack() as stack:
        yield [stack.enter_context(MAKERS[spec.kind](env, spec, context)) for spec in specs]
