"""ControlNet: load a model, attach a control image to conditionings."""
from latentloom.app.core.spec import Choice, File, Float, In, Out
from latentloom.app.core.types import CONDITIONING, CONTROL_NET, IMAGE, MASK
from latentloom.nodes.base import node


@node("LoadControlNet", "loaders",
      "Load an SD 1.5 ControlNet: a diffusers folder or a single .safetensors file (the "
      "control_v11p_sd15_* files and the old full-weight control_sd15_* ones). Loaded once per process.",
      outputs=[Out("controlnet", CONTROL_NET)],
      params=[File("path", "controlnet", "control_v11p_sd15_canny.safetensors", extensions=(".safetensors",),
                   help="ControlNet file or diffusers folder, relative to models/controlnet/ (or A1111's "
                        "models/ControlNet/)."),
              Choice("dtype", ["auto", "fp32", "fp16", "bf16"], help="Weights precision; auto is fp16 on a "
                     "GPU and fp32 on the CPU (use the checkpoint's).")])
def load_controlnet(ctx, path, dtype):
    return ctx.env.load_controlnet(ctx.fingerprint("path"), ctx.file("path"), dtype)


def _range(params):
    if params["start"] > params["end"]:
        return [("start", f"start {params['start']} is after end {params['end']}")]
    return []


@node("ApplyControlNet", "conditioning",
      "Steer the sampler with a ControlNet and a control image (resized to the output size as "
      "diffusers' control image processor does). Both outputs carry the control, which acts on the "
      "whole guidance batch as in diffusers; chain several for multi-ControlNet (residuals add).",
      inputs=[In("positive", CONDITIONING), In("negative", CONDITIONING), In("controlnet", CONTROL_NET),
              In("image", IMAGE, "The control image (an edge map, a depth map...)."),
              In("mask", MASK, "Optional: the control only acts where the mask is white.", optional=True)],
      outputs=[Out("positive", CONDITIONING), Out("negative", CONDITIONING)],
      params=[Float("strength", 1.0, "Scale of the ControlNet residuals (controlnet_conditioning_scale).",
                    min=0.0, max=10.0, step=0.05),
              Float("start", 0.0, "Fraction of the steps where the control starts (control_guidance_start).",
                    min=0.0, max=1.0, step=0.05),
              Float("end", 1.0, "Fraction of the steps where it ends (control_guidance_end).",
                    min=0.0, max=1.0, step=0.05)],
      check=_range)
def apply_controlnet(ctx, positive, negative, controlnet, image, strength, start, end, mask=None):
    from dataclasses import replace
    from latentloom.app.sd.controlnet import ControlSpec
    spec = ControlSpec(controlnet, image, float(strength), float(start), float(end), mask)
    return {"positive": replace(positive, guides=positive.guides + (spec,)),
            "negative": replace(negative, guides=negative.guides + (spec,))}
