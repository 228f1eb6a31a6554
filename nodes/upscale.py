"""Upscaling latents and images: the first half of a hires fix (a second Sampler pass follows)."""
from latentloom.app.core.spec import Choice, Float, In, Int, Out
from latentloom.app.core.types import IMAGE, LATENT
from latentloom.nodes.base import node

LATENT_METHODS = ["nearest-exact", "bilinear", "bicubic", "area", "nearest", "bilinear-antialias",
                  "bicubic-antialias", "bislerp"]


def _size_params(multiple):
    return [Int("width", 0, f"New width in pixels (a multiple of {multiple}); 0 = from height or scale.",
                min=0, max=8192, step=multiple),
            Int("height", 0, f"New height in pixels (a multiple of {multiple}); 0 = from width or scale.",
                min=0, max=8192, step=multiple),
            Float("scale", 1.5, "Scale factor, used when width and height are both 0.", min=0.05, max=8.0,
                  step=0.05)]


def _check(multiple):
    def check(params):
        if params.get("rounding") == "comfyui":  # floored to the latent grid when run
            return []
        return [(k, f"{params[k]} is not a multiple of {multiple}") for k in ("width", "height") if params[k] % multiple]
    return check


ROUNDING = Choice("rounding", ["nearest", "comfyui"], help="With width or height given: nearest: a side "
                  "given as 0 keeps the aspect ratio, rounded to the nearest multiple of 8 (sizes must be "
                  "multiples of 8); comfyui: as ComfyUI's LatentUpscale: each side at least 64, a side given "
                  "as 0 rounded to whole pixels, then both floored to multiples of 8.")
CROP = Choice("crop", ["disabled", "center"], help="center: first cut the source to the new aspect ratio, "
              "centred (ComfyUI's crop), so nothing is stretched; disabled: stretch to the new size.")


def _log_size(ctx, what, w0, h0, w, h):
    ctx.log(f"{what} {w0}x{h0} -> {w}x{h}")


@node("LatentUpscale", "latent",
      "Resize a latent to width x height pixels (or by scale) with torch's interpolation; feed it to a "
      "second Sampler with denoise < 1 for a hires fix. A mask (inpainting) is resized along.",
      inputs=[In("latent", LATENT)],
      outputs=[Out("latent", LATENT)],
      params=_size_params(8) + [Choice("method", LATENT_METHODS, help="Interpolation (torch; the -antialias "
                                       "ones are A1111's antialiased latent upscalers; bislerp is ComfyUI's: "
                                       "bilinear with slerp between pixels)."), CROP, ROUNDING],
      check=_check(8))
def latent_upscale(ctx, latent, width, height, scale, method, crop, rounding):
    from latentloom.app.sd import upscale
    lh, lw = latent.samples.shape[-2:]
    h0, w0 = lh * 8, lw * 8
    if rounding == "comfyui" and (width or height):
        w, h = upscale.comfyui_latent_size(width, height, lw, lh)
    else:
        w, h = upscale.target_size(width, height, scale, w0, h0, 8)
    _log_size(ctx, "latent", w0, h0, w, h)
    return upscale.latent(latent, w, h, method, crop)


@node("ImageScale", "image",
      "Resize images to width x height (or by scale): torch's interpolation, or PIL's lanczos.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=_size_params(1) + [Choice("method", LATENT_METHODS + ["lanczos"], help="Interpolation: torch's, "
                                       "ComfyUI's bislerp, or PIL's lanczos (sharpest)."), CROP,
                                 Choice("pixels", ["float", "comfyui"], help="float: lanczos on float planes, "
                                        "results clamped to 0..1; comfyui: as ComfyUI's ImageScale: lanczos "
                                        "on 8-bit RGB (values truncated to 8 bits first), the other methods "
                                        "not clamped.")])
def image_scale(ctx, image, width, height, scale, method, crop, pixels):
    from latentloom.app.sd import upscale
    h0, w0 = image.shape[-2:]
    w, h = upscale.target_size(width, height, scale, w0, h0, 1)
    _log_size(ctx, "image", w0, h0, w, h)
    return upscale.image(image, w, h, method, crop, pixels)
