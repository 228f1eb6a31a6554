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
