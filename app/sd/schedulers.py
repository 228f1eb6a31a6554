"""Build scheduler descriptions and fresh scheduler instances."""
import json

import diffusers

from latentloom.app.sd.handles import SchedulerHandle
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides


def describe(name, base_config, sigmas="default", spacing="default"):
    """A handle for Class.from_config(base_config, **overrides), with every value resolved.

    'default' spacing keeps what from_config gives (the checkpoint's value, else the
    class default); the resolved config is recorded so nothing changes silently later.
    """
    class_name = SCHEDULERS[name][0]
    cls = getattr(diffusers, class_name)
    sched = cls.from_config(dict(base_config), **overrides(name, sigmas, spacing))
    config = {k: v for k, v in dict(sched.config).items() if not k.startswith("_")}
    return SchedulerHandle(name, class_name, json.dumps(config, sort_keys=True, default=list))


def build(handle):
    """A new scheduler instance; never shared between runs."""
    cls = getattr(diffusers, handle.class_name)
    return cls.from_config(handle.config)
