"""Latents and noise."""
from app.core.spec import Int, Out, Seed
from app.core.types import LATENT, NOISE
from nodes.base import node


def _multiple_of_8(params):
    return [(k, f"{params[k]} is not a multiple of 8") for k in ("width", "height") if params[k] % 8]


@node("EmptyLatent", "latent",
      "An empty latent of the given size: the start of text-to-image.",
      outputs=[Out("latent", LATENT)],
      params=[Int("width", 512, "Image width in pixels (a multiple of 8).", min=8, max=8192, step=8),
              Int("height", 512, "Image height in pixels (a multiple of 8).", min=8, max=8192, step=8),
              Int("batch_size", 1, "Images per run.", min=1, max=64)],
      check=_multiple_of_8)
def empty_latent(ctx, width, height, batch_size):
    import torch
    from app.sd.handles import Latent
    return Latent(torch.zeros(batch_size, 4, height // 8, width // 8), empty=True)


@node("LatentNoise", "latent",
      "A seeded noise source. The sampler draws all its noise from one CPU generator seeded with it, "
      "in diffusers' order, so a seed gives the same image on any machine.",
      outputs=[Out("noise", NOISE)],
      params=[Seed("seed", 0, "The random seed.")])
def latent_noise(ctx, seed):
    from app.sd.handles import NoiseSpec
    return NoiseSpec(seed)
