"""Masks: 1 (white) = repaint, 0 = keep. A batch of 1 is repeated to match a batch of N."""
from latentloom.app.core.spec import Bool, Choice, File, Float, In, Int, Out
from latentloom.app.core.types import IMAGE, MASK
from latentloom.nodes.base import node
from latentloom.nodes.imageops import IMAGE_EXTENSIONS

RGB = ["red", "green", "blue"]


@node("LoadMask", "mask",
      "Load a mask from one channel of an image file (EXIF rotation applied).",
      outputs=[Out("mask", MASK)],
      params=[File("path", "images", help="Image file, relative to the models folders' images/ (or "
                   "input/) folder, or a full path. Editing the file re-runs the node.",
                   fingerprint="content", extensions=IMAGE_EXTENSIONS),
              Choice("channel", ["luminance"] + RGB + ["alpha"], help="luminance: the greyscale image, "
                     "white = repaint (diffusers' mask images); red/green/blue: that channel; alpha: "
                     "1 - alpha, transparent = repaint (all 0 without alpha).")])
def load_mask(ctx, path, channel):
    from latentloom.app.sd import masks
    mask, has_alpha = masks.load_mask(ctx.file("path"), channel)
    if channel == "alpha" and not has_alpha:
        ctx.log("the image has no alpha channel: the mask is all 0")
    return mask


@node("ImageToMask", "mask",
      "Take one channel of an image as a mask.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("mask", MASK)],
      params=[Choice("channel", ["luminance"] + RGB, help="luminance: 0.299 R + 0.587 G + 0.114 B "
                     "(as PIL's greyscale); or one colour channel.")])
def image_to_mask(ctx, image, channel):
    from latentloom.app.sd import masks
    return masks.image_to_mask(image, channel)


@node("MaskToImage", "mask",
      "Show a mask as a grey image (white = 1).",
      inputs=[In("mask", MASK)],
      outputs=[Out("image", IMAGE)])
def mask_to_image(ctx, mask):
    from latentloom.app.sd import masks
    return masks.mask_to_image(mask)


@node("InvertMask", "mask",
      "1 - mask: swap the repainted and kept areas.",
      inputs=[In("mask", MASK)],
      outputs=[Out("mask", MASK)])
def invert_mask(ctx, mask):
    from latentloom.app.sd import masks
    return 1.0 - masks.as_mask(mask)


@node("ThresholdMask", "mask",
      "Make a mask hard: values >= value (> value when strict) become 1, the rest 0.",
      inputs=[In("mask", MASK)],
      outputs=[Out("mask", MASK)],
      params=[Float("value", 0.5, "The threshold.", min=0.0, max=1.0),
              Bool("strict", False, "Only values above the threshold become 1 (as ComfyUI's ThresholdMask).")])
def threshold_mask(ctx, mask, value, strict=False):
    from latentloom.app.sd import masks
    mask = masks.as_mask(mask)
    return (mask > value if strict else mask >= value).float()


@node("GrowMask", "mask",
      "Grow the mask by a number of pixels with a max filter, or shrink it (negative) with a min "
      "filter. Pixels outside the image do not count.",
      inputs=[In("mask", MASK)],
      outputs=[Out("mask", MASK)],
      params=[Int("pixels", 8, "How far to grow; negative shrinks.", min=-512, max=512),
              Choice("shape", ["square", "round", "diamond"], help="Filter shape: square is a (2p+1)x(2p+1) "
                     "box (corners grow diagonally too); round is a disk of radius p; diamond: |dx| + |dy| <= p "
                     "(ComfyUI's GrowMask with tapered_corners).")])
def grow_mask(ctx, mask, pixels, shape):
    from latentloom.app.sd import masks
    return masks.grow(mask, pixels, shape, ctx.check_cancel)


@node("FeatherMask", "mask",
      "Soften the mask edge with a Gaussian blur (sigma = radius / 3, so the edge fades over about "
      "radius pixels on each side). Values stay within 0..1.",
      inputs=[In("mask", MASK)],
      outputs=[Out("mask", MASK)],
      params=[Int("radius", 8, "Blur radius in pixels; 0 leaves the mask as it is.", min=0, max=256)])
def feather_mask(ctx, mask, radius):
    from latentloom.app.sd import masks
    return masks.feather(mask, radius, ctx.check_cancel)


@node("SolidMask", "mask",
      "A mask of one value everywhere.",
      outputs=[Out("mask", MASK)],
      params=[Float("value", 1.0, "The mask value: 1 repaints everything, 0 nothing.", min=0.0, max=1.0),
              Int("width", 512, "Width in pixels.", min=8, max=8192, step=8),
              Int("height", 512, "Height in pixels.", min=8, max=8192, step=8)])
def solid_mask(ctx, value, width, height):
    import torch
    return torch.full((1, 1, height, width), float(value))


@node("CombineMasks", "mask",
      "Combine two masks pixel by pixel; the result is clamped to 0..1. b is resized to a's size "
      "when they differ.",
      inputs=[In("a", MASK), In("b", MASK)],
      outputs=[Out("mask", MASK)],
      params=[Choice("mode", ["add", "subtract", "multiply", "max", "min"],
                     help="add: a + b; subtract: a - b; multiply: a * b (intersection); max: union; "
                          "min: intersection of hard masks.")])
def combine_masks(ctx, a, b, mode):
    from latentloom.app.sd import masks
    out, resized = masks.combine(a, b, mode)
    if resized:
        ctx.log(f"b ({b.shape[-1]}x{b.shape[-2]}) resized to a's size {a.shape[-1]}x{a.shape[-2]}")
    return out
