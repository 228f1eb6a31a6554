"""Latent Loom: a node-graph workbench for Stable Diffusion."""
__version__ = "0.1.0"
