"""Built-in nodes. Each module declares plain functions with @node; importing is cheap (no torch)."""
from latentloom.nodes.base import catalog
from latentloom.nodes import loaders, conditioning, latent, sampling, image, imageops, masks, lora, train  # noqa: F401
from latentloom.nodes import controlnet, preprocess, upscale  # noqa: F401
from latentloom.nodes import comfyui  # noqa: F401
from latentloom.nodes import conditioning_ops  # noqa: F401

__all__ = ["catalog"]
