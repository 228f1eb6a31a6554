"""The sampler's one seam for extra guidance (ControlNet and the like).

A guide is asked, at every step, for extra keyword arguments to the U-Net call; the sampler
adds up what several guides return (residuals add, as in diffusers' MultiControlNetModel).
CFG itself stays in the sampler: guides see the model input exactly as the U-Net does
(the CFG batch of [negative, positive] when guidance is on).
"""
from contextlib import ExitStack, contextmanager


class Guide:
    def unet_kwargs(self, step, total, t, model_in, embeds):
        """Extra U-Net kwargs for this step (an empty dict adds nothing)."""
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


def step_kwargs(guides, step, total, t, model_in, embeds):
    kwargs = {}
    for guide in guides:
        merge(kwargs, guide.unet_kwargs(step, total, t, model_in, embeds))
    return kwargs


# Makers turn what a conditioning carries (conditioning.guides) into bound Guide objects while
# the sampler runs: {kind: maker(env, spec, context) -> context manager yielding a Guide}.
MAKERS = {}


@contextmanager
def bound(env, specs, context):
    """Enter every guide spec's maker; yields the list of Guide objects."""
    with ExitStack() as stack:
        yield [stack.enter_context(MAKERS[spec.kind](env, spec, context)) for spec in specs]
