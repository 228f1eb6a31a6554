"""Upscaling latents and images (the hires fix's first half)."""
import torch

TORCH_METHODS = ("nearest-exact", "bilinear", "bicubic", "area", "nearest", "bilinear-antialias",
                 "bicubic-antialias")


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


def comfyui_latent_size(width, height, latent_w, latent_h):
    """ComfyUI's LatentUpscale size for a latent of latent_w x latent_h: each given side at least 64;
    a side given as 0 from the other (before it is floored) and the latent's aspect ratio, rounded to
    whole pixels (Python's round), at least 64; then both floored to multiples of 8. Pixels."""
    if not width:
        height = max(64, height)
        width = max(64, round(latent_w * height / latent_h))
    elif not height:
        width = max(64, width)
        height = max(64, round(latent_h * width / latent_w))
    else:
        width, height = max(64, width), max(64, height)
    return width // 8 * 8, height // 8 * 8


def interpolate(x, width, height, method):
    """[B, C, H, W] to (height, width) with torch's interpolation (no corner alignment)."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    kw = {} if method in ("nearest-exact", "area", "nearest") else {"align_corners": False}
    if method.endswith("-antialias"):  # A1111's antialiased latent upscalers
        method, kw["antialias"] = method[:-len("-antialias")], True
    return torch.nn.functional.interpolate(x, size=(height, width), mode=method, **kw)


def center_crop(x, width, height):
    """x [..., H, W] cut to the aspect of width x height, centred, before scaling (ComfyUI's crop
    "center"): the longer side loses round((side - side * ratio) / 2) on each end, Python's round."""
    h0, w0 = x.shape[-2:]
    old, new = w0 / h0, width / height
    dx = round((w0 - w0 * (new / old)) / 2) if old > new else 0
    dy = round((h0 - h0 * (old / new)) / 2) if old < new else 0
    return x[..., dy:h0 - dy, dx:w0 - dx]


def latent(lat, width, height, method, crop="disabled"):
    """A Latent at width x height pixels; an inpainting mask and masked-image latents follow along."""
    from latentloom.app.sd.handles import Latent
    h, w = height // 8, width // 8
    if crop == "center":
        cut = lambda x: None if x is None else center_crop(x, w, h)  # noqa: E731
        lat = Latent(cut(lat.samples), empty=lat.empty, mask=cut(lat.mask),
                     masked_image_latents=cut(lat.masked_image_latents))
    mask = None if lat.mask is None else interpolate(lat.mask, w, h, "nearest-exact")
    masked = None if lat.masked_image_latents is None else interpolate(lat.masked_image_latents, w, h, method)
    return Latent(interpolate(lat.samples, w, h, method), empty=lat.empty, mask=mask, masked_image_latents=masked)


def image(img, width, height, method, crop="disabled"):
    if crop == "center":
        img = center_crop(img, width, height)
    if method == "lanczos":
        from latentloom.app.sd import masks
        return masks.resize(img, width, height, "lanczos")
    return interpolate(img, width, height, method).clamp(0, 1)
