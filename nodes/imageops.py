"""Loading, resizing and compositing images."""
from latentloom.app.core.spec import Choice, File, In, Int, Out
from latentloom.app.core.types import IMAGE, MASK
from latentloom.nodes.base import node

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
METHODS = ["lanczos", "bicubic", "bilinear", "nearest"]


@node("LoadImage", "image",
      "Load a PNG, JPEG or WebP image (EXIF rotation applied). Its alpha channel becomes a mask: "
      "transparent pixels are 1 (repaint); the mask is all 0 when the image has no alpha.",
      outputs=[Out("image", IMAGE, "The RGB image, batch of 1."),
               Out("mask", MASK, "1 - alpha: transparent areas are to be repainted.")],
      params=[File("path", "images", help="Image file, relative to the models folders' images/ "
                   "(or input/) folder, or a full path. Editing the file re-runs the node.",
                   fingerprint="content", extensions=IMAGE_EXTENSIONS)])
def load_image(ctx, path):
    from latentloom.app.sd import masks
    image, mask = masks.load_image(ctx.file("path"))
    ctx.log(f"loaded {image.shape[-1]}x{image.shape[-2]}")
    return {"image": image, "mask": mask}


@node("ResizeImage", "image",
      "Resize images to width x height. crop none stretches to the new size; center scales to "
      "cover it and cuts away the overflow equally on both sides (as diffusers' resize_mode 'crop').",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Int("width", 512, "New width in pixels (a multiple of 8 suits the VAE).", min=8, max=8192, step=8),
              Int("height", 512, "New height in pixels (a multiple of 8 suits the VAE).", min=8, max=8192, step=8),
              Choice("method", METHODS, help="Resampling filter: lanczos is sharpest (diffusers' default); "
                     "nearest keeps hard edges."),
              Choice("crop", ["none", "center"], help="none: stretch to the size; center: keep the aspect "
                     "ratio, cover the size and cut the centre.")])
def resize_image(ctx, image, width, height, method, crop):
    from latentloom.app.sd import masks
    fn = masks.resize_crop if crop == "center" else masks.resize
    return fn(image, width, height, method)


@node("CompositeMasked", "image",
      "Paste the generated image over the original inside the mask and keep the original exactly "
      "outside it (diffusers' apply_overlay). Source and mask are resized to the destination's size.",
      inputs=[In("destination", IMAGE, "The original image."),
              In("source", IMAGE, "The generated image."),
              In("mask", MASK, "Where to take the source: 1 = source, 0 = destination, between = blend.")],
      outputs=[Out("image", IMAGE)])
def composite_masked(ctx, destination, source, mask):
    from latentloom.app.sd import masks
    image, notes = masks.composite(destination, source, mask)
    for note in notes:
        ctx.log(note)
    return image
