"""ComfyUI's conditioning nodes, computed as ComfyUI computes them (app/sd/comfy/conds.py)."""
from latentloom.app.core.spec import Choice, Float, In, Int, Out
from latentloom.app.core.types import CONDITIONING, MASK
from latentloom.nodes.base import node

PAIR = [In("conditioning_to", CONDITIONING), In("conditioning_from", CONDITIONING)]
OUT = [Out("conditioning", CONDITIONING)]


def _first_only(ctx, name, source):
    if source.extra:
        ctx.log(f"{name}: conditioning_from has {len(source.extra) + 1} entries; only the first one is used "
                "(as in ComfyUI)")


@node("ConditioningConcat", "conditioning",
      "ComfyUI's ConditioningConcat: the embeddings of conditioning_from (its first entry) are appended "
      "to those of every entry of conditioning_to, so the prompt gets more tokens.",
      inputs=PAIR, outputs=OUT)
def conditioning_concat(ctx, conditioning_to, conditioning_from):
    from latentloom.app.sd.comfy import conds
    _first_only(ctx, "ConditioningConcat", conditioning_from)
    return conds.concat(conditioning_to, conditioning_from)


@node("ConditioningAverage", "conditioning",
      "ComfyUI's ConditioningAverage: to * conditioning_to_strength + from * (1 - conditioning_to_strength); "
      "from's embeddings are cut or zero-padded to the length of to's.",
      inputs=PAIR, outputs=OUT,
      params=[Float("conditioning_to_strength", 1.0, "Weight of conditioning_to (1 = only it).",
                    min=0.0, max=1.0, step=0.01)])
def conditioning_average(ctx, conditioning_to, conditioning_from, conditioning_to_strength):
    from latentloom.app.sd.comfy import conds
    _first_only(ctx, "ConditioningAverage", conditioning_from)
    return conds.average(conditioning_to, conditioning_from, conditioning_to_strength)


@node("ConditioningZeroOut", "conditioning",
      "ComfyUI's ConditioningZeroOut: the embeddings become zeros (the prompt says nothing at all, "
      "unlike an empty prompt).",
      inputs=[In("conditioning", CONDITIONING)], outputs=OUT)
def conditioning_zero_out(ctx, conditioning):
    from latentloom.app.sd.comfy import conds
    return conds.zero_out(conditioning)


@node("ConditioningCombine", "conditioning",
      "ComfyUI's ConditioningCombine: one conditioning holding the entries of both. At every step the "
      "sampler predicts with each entry and averages the predictions, weighted by their strength "
      "(needs a Scheduler with sampling comfyui).",
      inputs=[In("conditioning_1", CONDITIONING), In("conditioning_2", CONDITIONING)], outputs=OUT)
def conditioning_combine(ctx, conditioning_1, conditioning_2):
    from latentloom.app.sd.comfy import conds
    return conds.combine(conditioning_1, conditioning_2)


@node("ConditioningSetTimestepRange", "conditioning",
      "ComfyUI's ConditioningSetTimestepRange: the conditioning acts only while sigma lies between "
      "the sigmas at start and end (fractions of the model's sigma range, percent_to_sigma); at other "
      "steps the other entries of its side carry the prediction (combine it with ConditioningCombine). "
      "Needs a Scheduler with sampling comfyui.",
      inputs=[In("conditioning", CONDITIONING)], outputs=OUT,
      params=[Float("start", 0.0, "Where the conditioning starts acting (0 = from the first step).",
                    min=0.0, max=1.0, step=0.001),
              Float("end", 1.0, "Where it stops (1 = to the last step); start after end: it never acts, "
                    "as in ComfyUI.", min=0.0, max=1.0, step=0.001)])
def conditioning_set_timestep_range(ctx, conditioning, start, end):
    from latentloom.app.sd.comfy import conds
    return conds.set_values(conditioning, start_percent=start, end_percent=end)


STRENGTH = Float("strength", 1.0, "Weight of this conditioning against the others of its side.",
                 min=0.0, max=10.0, step=0.01)


@node("ConditioningSetArea", "conditioning",
      "ComfyUI's ConditioningSetArea: the conditioning acts on a rectangle (pixels, floored to the "
      "latent's 8-pixel grid), its weight fading in over up to 8 latent pixels at edges inside the "
      "picture; combine it with a conditioning for the rest. Needs a Scheduler with sampling comfyui.",
      inputs=[In("conditioning", CONDITIONING)], outputs=OUT,
      params=[Int("width", 64, "Area width in pixels.", min=64, max=16384, step=8),
              Int("height", 64, "Area height in pixels.", min=64, max=16384, step=8),
              Int("x", 0, "Left edge in pixels.", min=0, max=16384, step=8),
              Int("y", 0, "Top edge in pixels.", min=0, max=16384, step=8), STRENGTH])
def conditioning_set_area(ctx, conditioning, width, height, x, y, strength):
    from latentloom.app.sd.comfy import conds
    return conds.set_values(conditioning, area=(height // 8, width // 8, y // 8, x // 8), strength=strength,
                            set_area_to_bounds=False)


@node("ConditioningSetAreaPercentage", "conditioning",
      "ComfyUI's ConditioningSetAreaPercentage: ConditioningSetArea with fractions of the picture "
      "(rounded to latent pixels when sampling). Needs a Scheduler with sampling comfyui.",
      inputs=[In("conditioning", CONDITIONING)], outputs=OUT,
      params=[Float("width", 1.0, "Area width, a fraction of the picture's.", min=0.0, max=1.0, step=0.01),
              Float("height", 1.0, "Area height, a fraction of the picture's.", min=0.0, max=1.0, step=0.01),
              Float("x", 0.0, "Left edge, a fraction of the width.", min=0.0, max=1.0, step=0.01),
              Float("y", 0.0, "Top edge, a fraction of the height.", min=0.0, max=1.0, step=0.01), STRENGTH])
def conditioning_set_area_percentage(ctx, conditioning, width, height, x, y, strength):
    from latentloom.app.sd.comfy import conds
    return conds.set_values(conditioning, area=("percentage", height, width, y, x), strength=strength,
                            set_area_to_bounds=False)


@node("ConditioningSetAreaStrength", "conditioning",
      "ComfyUI's ConditioningSetAreaStrength: the conditioning's weight against the others of its "
      "side. Needs a Scheduler with sampling comfyui.",
      inputs=[In("conditioning", CONDITIONING)], outputs=OUT, params=[STRENGTH])
def conditioning_set_area_strength(ctx, conditioning, strength):
    from latentloom.app.sd.comfy import conds
    return conds.set_values(conditioning, strength=strength)


@node("ConditioningSetMask", "conditioning",
      "ComfyUI's ConditioningSetMask: the conditioning acts where the mask is white, weighted by it "
      "(resized to the latent bilinearly) times strength; mask bounds also cuts the U-Net's input "
      "to the mask's bounding box. Needs a Scheduler with sampling comfyui.",
      inputs=[In("conditioning", CONDITIONING), In("mask", MASK)], outputs=OUT,
      params=[Float("strength", 1.0, "Scales the mask.", min=0.0, max=10.0, step=0.01),
              Choice("set_cond_area", ["default", "mask bounds"], "default",
                     "default: the whole picture; mask bounds: the mask's bounding box (at least 8 latent pixels).")])
def conditioning_set_mask(ctx, conditioning, mask, strength, set_cond_area):
    from latentloom.app.sd.comfy import conds
    mask = mask[:, 0] if mask.ndim == 4 else mask  # ours [b, 1, h, w]; ComfyUI's [b, h, w]
    return conds.set_values(conditioning, mask=mask.float(), set_area_to_bounds=set_cond_area != "default",
                            mask_strength=strength)
