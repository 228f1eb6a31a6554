"""Built-in nodes. Each module declares plain functions with @node; importing is cheap (no torch)."""
from nodes.base import catalog
from nodes import loaders, conditioning, latent, sampling, image, imageops, masks, lora, train  # noqa: F401
from nodes import controlnet, preprocess, upscale  # noqa: F401
from nodes import comfyui  # noqa: F401

__all__ = ["catalog"]
