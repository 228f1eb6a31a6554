"""Control images for ControlNets: edge, line, scribble and depth maps."""
from latentloom.app.core.spec import Choice, File, Float, In, Int, Out
from latentloom.app.core.types import IMAGE
from latentloom.nodes.base import node


def _ordered(params):
    if params["low"] > params["high"]:
        return [("low", f"low {params['low']} is above high {params['high']}")]
    return []


@node("Canny", "controlnet",
      "Canny edges (OpenCV) as white lines on black, for canny ControlNets.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Int("low", 100, "Lower hysteresis threshold (0-255).", min=0, max=255),
              Int("high", 200, "Upper hysteresis threshold (0-255).", min=0, max=255)],
      check=_ordered)
def canny(ctx, image, low, high):
    from latentloom.app.sd import control_images
    return control_images.canny(image, low, high)


@node("Lineart", "controlnet",
      "Line art by threshold: pixels darker than the threshold become white lines on black, for "
      "lineart ControlNets (a drawing or a scan, not a photo).",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Float("threshold", 0.5, "Brightness below which a pixel is a line (0-1).", min=0.0, max=1.0)])
def lineart(ctx, image, threshold):
    from latentloom.app.sd import control_images
    return control_images.lines(image, threshold)


@node("Scribble", "controlnet",
      "Scribbles by threshold: dark strokes become white lines on black, widened by thickness "
      "pixels, for scribble ControlNets.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Float("threshold", 0.5, "Brightness below which a pixel is a stroke (0-1).", min=0.0, max=1.0),
              Int("thickness", 2, "Widen strokes by this many pixels.", min=0, max=32)])
def scribble(ctx, image, threshold, thickness):
    from latentloom.app.sd import control_images
    return control_images.lines(image, threshold, thickness)


@node("Invert", "controlnet",
      "Invert an image (black lines on white <-> white lines on black).",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Choice("precision", ["8bit", "float"], help="8bit: round to 8 bits, then invert (as OpenCV); "
                     "float: 1 - image, unrounded (ComfyUI's ImageInvert).")])
def invert(ctx, image, precision="8bit"):
    if precision == "float":
        return 1.0 - image
    from latentloom.app.sd import control_images
    return control_images.invert(image)


@node("ImageToControl", "controlnet",
      "Use an image as it is as the control image (a ready-made edge, depth or pose map).",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)])
def image_to_control(ctx, image):
    return image


@node("DepthMap", "controlnet",
      "A depth map from your own transformers depth-estimation model folder (for example "
      "Intel/dpt-hybrid-midas or depth-anything/Depth-Anything-V2-Small-hf, downloaded into "
      "models/annotators/), made as diffusers' depth ControlNet examples make it.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[File("path", "annotators", "dpt-hybrid-midas",
                   help="Model folder, relative to models/annotators/.")])
def depth_map(ctx, image, path):
    from latentloom.app.sd import control_images
    return control_images.depth(image, ctx.file("path"))


@node("PoseMap", "controlnet",
      "An OpenPose-style skeleton for openpose ControlNets, from your own transformers ViTPose model "
      "folder (for example usyd-community/vitpose-base-simple, downloaded into models/annotators/). "
      "The whole image is taken as one person.",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[File("path", "annotators", "vitpose-base-simple", help="Model folder, relative to models/annotators/."),
              Float("threshold", 0.3, "Keypoints scored below this are left out.", min=0.0, max=1.0)])
def pose_map(ctx, image, path, threshold):
    from latentloom.app.sd import control_images
    return control_images.pose(image, ctx.file("path"), threshold)
