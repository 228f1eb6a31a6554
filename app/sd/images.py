"""Latents <-> images with the VAE, and image tensors <-> PIL, as diffusers' image processor does."""
from contextlib import contextmanager

import torch
from diffusers.image_processor import VaeImageProcessor

# A cheap linear latent -> RGB map for SD 1.x previews.
PREVIEW_FACTORS = torch.tensor([
    [0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]])


@torch.no_grad()
def decode(vae, latents):
    """Latents -> IMAGE: float tensor [batch, 3, H, W] in 0..1 on the CPU."""
    from latentloom.app.engine.memory import check_decode
    f = scale_factor(vae)
    check_decode(vae, (latents.shape[0], 3, latents.shape[-2] * f, latents.shape[-1] * f))
    latents = latents.to(device=vae.device, dtype=vae.dtype)
    image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    return VaeImageProcessor.denormalize(image).cpu().float()


@contextmanager
def tiling(vae, on):
    """diffusers' VAE tiling for one call (the caller holds the VAE's lock): above sample_size pixels
    (SD 1.5: 512, so latents above 64) on a side it works in sample_size tiles overlapping by 25%."""
    if not on:
        yield vae
        return
    vae.enable_tiling()
    try:
        yield vae
    finally:
        vae.disable_tiling()


def scale_factor(vae):
    return 2 ** (len(vae.config.block_out_channels) - 1)


def prepare(vae, image):
    """IMAGE in 0..1 -> normalized -1..1, resized down to multiples of the VAE factor as diffusers does."""
    return VaeImageProcessor(vae_scale_factor=scale_factor(vae)).preprocess(image)


@torch.no_grad()
def encode(vae, pixels):
    """Normalized pixels (from prepare) -> scaled latents: the latent distribution's mean."""
    from latentloom.app.engine.memory import check_decode
    check_decode(vae, pixels.shape, "encode")
    x = pixels.to(device=vae.device, dtype=vae.dtype)
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


def latent_mask(mask, height, width, factor):
    """MASK -> the inpaint pipelines' mask: resized to the image, binarized, then nearest to latent size."""
    proc = VaeImageProcessor(vae_scale_factor=factor, do_normalize=False, do_binarize=True,
                             do_convert_grayscale=True)
    full = proc.preprocess(mask, height=height, width=width)
    small = torch.nn.functional.interpolate(full, size=(height // factor, width // factor))
    return full, small


def to_pil(image):
    """IMAGE -> list of PIL images, rounding as diffusers does."""
    return VaeImageProcessor.numpy_to_pil(VaeImageProcessor.pt_to_numpy(image))


def from_pil(pil_images):
    """PIL images of one size -> IMAGE [batch, 3, H, W] in 0..1."""
    return VaeImageProcessor.numpy_to_pt(VaeImageProcessor.pil_to_numpy([im.convert("RGB") for im in pil_images]))


@torch.no_grad()
def preview(latents):
    """The first latent of a batch as a small PIL image."""
    rgb = torch.einsum("chw,cr->rhw", latents[0, :4].float().cpu(), PREVIEW_FACTORS)
    return to_pil(((rgb + 1) / 2).clamp(0, 1)[None])[0]
