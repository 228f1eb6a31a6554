"""Everything that touches torch and diffusers: loading, sampling, LoRA activation, model store."""
