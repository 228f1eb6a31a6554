"""ComfyUI's conditioning nodes, computed as ComfyUI computes them (app/sd/comfy/conds.py)."""
from latentloom.app.core.spec import Float, In, Out
from latentloom.app.core.types import CONDITIONING
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
