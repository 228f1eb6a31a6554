"""Upscaling latents and images (the hires fix's first half)."""
import torch

TORCH_METHODS = ("nearest-exact", "bilinear", "bicubic", "area")


def target_size(width, height, scale, src_w, src_h, multiple):
    """width/height when given (one of them 0: keep the aspect ratio), else the source times scale;
    rounded to the nearest multiple (at least one multiple)."""
    def snap(v):
        return max(multiple, int(round(v / multiple)) * multiple)
    if width and height:
        return width, height
    if width:
        return width, snap(src_h * width / src_w)
    if height:
        return snap(src_w * height / src_h), height
    return snap(src_w * scale), snap(src_h * scale)


def interpolate(x, width, height, method):
    """[B, C, H, W] to (height, width) with torch's interpolation (no corner alignment)."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    kw = {} if method in ("nearest-exact", "area") else {"align_corners": False}
    return torch.nn.functional.interpolate(x, size=(height, width), mode=method, **kw)


def latent(lat, width, height, method):
    """A Latent at width x height pixels; an inpainting mask and masked-image latents follow along."""
    from latentloom.app.sd.handles import Latent
    h, w = height // 8, width // 8
    mask = None if lat.mask is None else interpolate(lat.mask, w, h, "nearest-exact")
    masked = None if lat.masked_image_latents is None else interpolate(lat.masked_image_latents, w, h, method)
    return Latent(interpolate(lat.samples, w, h, method), empty=lat.empty, mask=mask, masked_image_latents=masked)


def image(img, width, height, method):
    if method == "lanczos":
        from latentloom.app.sd import masks
        return masks.resize(img, width, height, "lanczos")
    return interpolate(img, width, height, method).clamp(0, 1)
