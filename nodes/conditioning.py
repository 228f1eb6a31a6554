"""Text conditioning."""
from app.core.spec import Choice, In, Int, Out, Text
from app.core.types import CLIP, CONDITIONING
from nodes.base import node


@node("TextEncode", "conditioning",
      "Encode a prompt with the CLIP text encoder. Prompts longer than 77 tokens are split into "
      "chunks of 75 tokens, each encoded on its own and joined, never silently truncated.",
      inputs=[In("clip", CLIP)],
      outputs=[Out("conditioning", CONDITIONING)],
      params=[Text("text", "", "The prompt."),
              Int("clip_skip", 0, "Skip this many final layers: 0 = last layer; 1 = A1111's 'clip skip 2'.",
                  min=0, max=10),
              Choice("weighting", ["comfyui", "a1111", "none"], "comfyui",
                     "How (word:1.2) syntax is read: comfyui (weights set, z_empty-relative), a1111 "
                     "((x) x1.1, [x] /1.1, BREAK; mean-preserving) or none (literal text). A prompt "
                     "without that syntax encodes the same in all three.")])
def text_encode(ctx, clip, text, clip_skip, weighting):
    from app.sd import text as sd_text
    with ctx.env.clip(clip) as te:
        depth = te.encoder.config.num_hidden_layers
        if clip_skip >= depth:
            from app.core.errors import UserError
            raise UserError(f"clip_skip {clip_skip} is too large for a text encoder of {depth} layers")
        if weighting == "none":
            return sd_text.encode(te, clip, text, clip_skip)
        from app.sd import weighting as weights
        return weights.encode(te, clip, text, clip_skip, weighting, ctx.log)
