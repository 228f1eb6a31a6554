"""Latents and noise."""
from latentloom.app.core.spec import Bool, Choice, In, Int, Out, Seed
from latentloom.app.core.types import IMAGE, LATENT, MASK, NOISE, VAE
from latentloom.nodes.base import node


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
    from latentloom.app.sd.handles import Latent
    return Latent(torch.zeros(batch_size, 4, height // 8, width // 8), empty=True)


@node("LatentNoise", "latent",
      "A seeded noise source. The sampler draws all its noise from one CPU generator seeded with it, "
      "in diffusers' order, so a seed gives the same image on any machine.",
      outputs=[Out("noise", NOISE)],
      params=[Seed("seed", 0, "The random seed.")])
def latent_noise(ctx, seed):
    from latentloom.app.sd.handles import NoiseSpec
    return NoiseSpec(seed)


def _pixels(ctx, model, image):
    from latentloom.app.sd import images
    pixels = images.prepare(model, image)
    if tuple(pixels.shape[-2:]) != tuple(image.shape[-2:]):
        ctx.log(f"image {image.shape[-1]}x{image.shape[-2]} resized to {pixels.shape[-1]}x{pixels.shape[-2]} "
                f"(multiples of {images.scale_factor(model)})")
    return pixels


@node("VAEEncode", "latent",
      "Encode images into latents with the VAE (the latent distribution's mean, scaled by the VAE's "
      "scaling factor: deterministic). Sizes that are not multiples of 8 are resized down, as diffusers does.",
      inputs=[In("vae", VAE), In("image", IMAGE)],
      outputs=[Out("latent", LATENT)],
      params=[Bool("tiled", False, "Work in overlapping tiles (diffusers' enable_tiling) to bound memory: "
                   "SD 1.5 VAEs tile above 512 px (latents above 64) on a side, in 512 px tiles."),
              Choice("sizing", ["resize", "crop"], "resize", "Sizes that are not multiples of 8: resize "
                     "down (diffusers) or centre-crop (ComfyUI).")])
def vae_encode(ctx, vae, image, tiled, sizing):
    from latentloom.app.sd import images
    from latentloom.app.sd.handles import Latent
    with ctx.env.vae(vae) as model, images.tiling(model, tiled):
        if sizing == "crop":
            from latentloom.app.sd.comfy.images import crop
            return Latent(images.encode(model, crop(image, images.scale_factor(model)) * 2.0 - 1.0))
        return Latent(images.encode(model, _pixels(ctx, model, image)))


def _mask_for(ctx, mask, height, width, factor):
    from latentloom.app.sd import images
    if tuple(mask.shape[-2:]) != (height, width):
        ctx.log(f"mask {mask.shape[-1]}x{mask.shape[-2]} resized to the image's {width}x{height}")
    return images.latent_mask(mask, height, width, factor)


@node("SetLatentMask", "latent",
      "Attach an inpainting mask (white = repaint) to a latent, for ordinary 4-channel models: the "
      "sampler re-noises the original latent outside the mask at every step, as diffusers' inpaint "
      "pipeline does.",
      inputs=[In("latent", LATENT), In("mask", MASK)],
      outputs=[Out("latent", LATENT)],
      params=[Choice("resize", ["binarize", "bilinear"], "binarize", "binarize: as diffusers' inpaint "
                     "pipeline (mask binarized at image size, nearest to the latent); bilinear: as "
                     "ComfyUI's noise mask (resized to the latent bilinearly, not rounded).")])
def set_latent_mask(ctx, latent, mask, resize):
    from latentloom.app.sd.handles import Latent
    h, w = latent.samples.shape[-2:]
    if resize == "bilinear":
        from latentloom.app.sd.comfy.images import latent_mask
        return Latent(latent.samples, mask=latent_mask(mask, h, w))
    _, small = _mask_for(ctx, mask, h * 8, w * 8, 8)
    return Latent(latent.samples, mask=small)


@node("InpaintEncode", "latent",
      "Encode an image and a mask for 9-channel inpainting checkpoints (SD 1.5 inpainting layout): the "
      "latent carries the image latents, the mask and the masked-image latents.",
      inputs=[In("vae", VAE), In("image", IMAGE), In("mask", MASK)],
      outputs=[Out("latent", LATENT)],
      params=[Choice("masking", ["diffusers", "comfyui"], "diffusers", "diffusers: as its inpaint pipeline "
                     "(image resized to multiples of 8, mask binarized, nearest to the latent); comfyui: as "
                     "ComfyUI's InpaintModelConditioning (image centre-cropped, masked pixels greyed where the "
                     "rounded mask is 1; the model gets the mask bilinear to the latent and rounded, the noise "
                     "mask is bilinear, not rounded)."),
              Bool("noise_mask", True, "false: the latent carries no noise mask, so the whole image is "
                   "sampled; a 9-channel model still gets the mask and masked image (ComfyUI's noise_mask "
                   "false; runs with comfyui sampling).")])
def inpaint_encode(ctx, vae, image, mask, masking, noise_mask):
    from latentloom.app.sd import images
    from latentloom.app.sd.handles import Latent
    if masking == "comfyui":
        return _comfyui_inpaint_encode(ctx, vae, image, mask, noise_mask)
    with ctx.env.vae(vae) as model:
        pixels = _pixels(ctx, model, image)
        h, w = pixels.shape[-2:]
        full, small = _mask_for(ctx, mask, h, w, images.scale_factor(model))
        masked = pixels * (full < 0.5)
        return Latent(images.encode(model, pixels), mask=small if noise_mask else None,
                      masked_image_latents=images.encode(model, masked), inpaint_mask=None if noise_mask else small)


def _comfyui_inpaint_encode(ctx, vae, image, mask, noise_mask):
    from latentloom.app.sd import images
    from latentloom.app.sd.comfy import images as comfy_images
    from latentloom.app.sd.handles import Latent
    with ctx.env.vae(vae) as model:
        pixels, full = comfy_images.cropped_with_mask(image, mask, images.scale_factor(model))
        samples = images.encode(model, pixels * 2.0 - 1.0)
        masked = images.encode(model, comfy_images.grey(pixels, full) * 2.0 - 1.0)
    small = comfy_images.latent_mask(full, *samples.shape[-2:])
    return Latent(samples, mask=small if noise_mask else None, masked_image_latents=masked,
                  inpaint_mask=small.round())
