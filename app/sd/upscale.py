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
    """[B, C, H, W] to (height, width) with torch's interpolation (no corner alignment), or bislerp."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    if method == "bislerp":
        return bislerp(x, width, height)
    kw = {} if method in ("nearest-exact", "area", "nearest") else {"align_corners": False}
    if method.endswith("-antialias"):  # A1111's antialiased latent upscalers
        method, kw["antialias"] = method[:-len("-antialias")], True
    return torch.nn.functional.interpolate(x, size=(height, width), mode=method, **kw)


def bislerp(x, width, height):
    """ComfyUI's bislerp: bilinear sampling (torch's align_corners=False source coordinates), but
    each pair of neighbouring pixels is blended by slerp of their channel vectors, with the norm
    interpolated linearly; first along the width, then along the height, in float32."""
    dtype = x.dtype
    x = _slerp_along_width(x.float(), width)
    x = _slerp_along_width(x.transpose(-1, -2), height).transpose(-1, -2)
    return x.to(dtype)


def _neighbours(size, new):
    """For each of `new` positions: the left source index, the right one, and the blend ratio.
    Both indices come from bilinearly resampling index ramps (the right ramp ends flat), as ComfyUI."""
    ramp = torch.arange(size, dtype=torch.float32).reshape(1, 1, 1, -1)
    pos = torch.nn.functional.interpolate(ramp, size=(1, new), mode="bilinear")
    right = ramp + 1
    right[..., -1] -= 1
    right = torch.nn.functional.interpolate(right, size=(1, new), mode="bilinear")
    return pos.to(torch.int64).flatten(), right.to(torch.int64).flatten(), (pos - pos.floor()).flatten()


def _slerp_along_width(x, new):
    n, c, h, w = x.shape
    left, right, ratio = _neighbours(w, new)
    a = x[..., left].movedim(1, -1).reshape(-1, c)
    b = x[..., right].movedim(1, -1).reshape(-1, c)
    r = ratio.expand(n, h, new).reshape(-1, 1)
    return _slerp(a, b, r).reshape(n, h, new, c).movedim(-1, 1)


def _slerp(a, b, r):
    """Rows of a and b [N, C] blended by r [N, 1]: slerp of the unit vectors (zero for a zero
    vector) scaled by the linearly blended norms; a where they point the same way, the linear
    blend where they are opposite (within 1e-5)."""
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    unit_a = torch.where(norm_a == 0, 0.0, a / norm_a)
    unit_b = torch.where(norm_b == 0, 0.0, b / norm_b)
    dot = (unit_a * unit_b).sum(1)
    omega = torch.acos(dot)
    sin = torch.sin(omega)
    out = ((torch.sin((1.0 - r.squeeze(1)) * omega) / sin).unsqueeze(1) * unit_a
           + (torch.sin(r.squeeze(1) * omega) / sin).unsqueeze(1) * unit_b)
    out = out * (norm_a * (1.0 - r) + norm_b * r)
    same, opposite = dot > 1 - 1e-5, dot < 1e-5 - 1
    out[same] = a[same]
    out[opposite] = (a * (1.0 - r) + b * r)[opposite]
    return out


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
                     masked_image_latents=cut(lat.masked_image_latents), inpaint_mask=cut(lat.inpaint_mask))
    near = lambda x: None if x is None else interpolate(x, w, h, "nearest-exact")  # noqa: E731
    masked = None if lat.masked_image_latents is None else interpolate(lat.masked_image_latents, w, h, method)
    return Latent(interpolate(lat.samples, w, h, method), empty=lat.empty, mask=near(lat.mask),
                  masked_image_latents=masked, inpaint_mask=near(lat.inpaint_mask))


def image(img, width, height, method, crop="disabled", pixels="float"):
    """pixels comfyui: as ComfyUI's ImageScale: lanczos on 8-bit RGB (255 x clipped and truncated
    first, even at an unchanged size), and the other methods not clamped to 0..1."""
    if crop == "center":
        img = center_crop(img, width, height)
    if method == "lanczos" and pixels == "comfyui":
        from PIL import Image
        from latentloom.app.sd.comfy.images import to_pil_truncated
        from latentloom.app.sd.images import from_pil
        return from_pil([p.resize((width, height), Image.Resampling.LANCZOS) for p in to_pil_truncated(img)])
    if method == "lanczos":
        from latentloom.app.sd import masks
        return masks.resize(img, width, height, "lanczos")
    out = interpolate(img, width, height, method)
    return out if pixels == "comfyui" else out.clamp(0, 1)
