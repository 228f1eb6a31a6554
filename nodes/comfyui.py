"""Nodes for ComfyUI behaviour our other nodes do not cover."""
from latentloom.app.core.spec import In, Int, Out
from latentloom.app.core.types import IMAGE, LATENT, MASK, VAE
from latentloom.nodes.base import node


@node("VAEEncodeForInpaint", "latent",
      "ComfyUI's inpaint encode: centre-crop to multiples of 8, grey the pixels where the rounded mask "
      "is 1, encode, and attach the mask grown by grow_mask_by pixels (a ones kernel) as the noise mask.",
      inputs=[In("vae", VAE), In("image", IMAGE), In("mask", MASK)],
      outputs=[Out("latent", LATENT)],
      params=[Int("grow_mask_by", 6, "Grow the mask by this many pixels.", min=0, max=64)])
def vae_encode_for_inpaint(ctx, vae, image, mask, grow_mask_by):
    from latentloom.app.sd import images
    from latentloom.app.sd.comfy.images import inpaint_pixels, latent_mask
    from latentloom.app.sd.handles import Latent
    pixels, noise_mask = inpaint_pixels(image, mask, grow_mask_by)
    with ctx.env.vae(vae) as model:
        samples = images.encode(model, pixels * 2.0 - 1.0)
    return Latent(samples, mask=latent_mask(noise_mask, *samples.shape[-2:]))
