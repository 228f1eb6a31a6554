"""Text conditioning."""
from latentloom.app.core.spec import Choice, In, Int, Out, Text
from latentloom.app.core.types import CLIP, CONDITIONING
from latentloom.nodes.base import node


def embedding_refs(params):
    """Embeddings a prompt names: embedding:name, and bare file names in A1111 weighting mode.
    comfyui weighting reads them by ComfyUI's rule, and one that is missing is dropped when run."""
    from latentloom.app.core.spec import Ref
    from latentloom.app.sd.embeddings import candidates, comfyui_candidates, comfyui_names, names, words
    text = params.get("text", "")
    if params.get("weighting") == "comfyui":
        return [Ref("text", n, comfyui_candidates(n), "embeddings", "embedding", required=False, walk=True)
                for n in comfyui_names(text)]
    refs = [Ref("text", n, candidates(n), "embeddings", "embedding") for n in names(text)]
    if params.get("weighting") == "a1111":
        refs += [Ref("text", w, candidates(w), "embeddings", "embedding", required=False) for w in words(text)]
    return refs


@node("TextEncode", "conditioning",
      "Encode a prompt with the CLIP text encoder. Prompts longer than 77 tokens are split into "
      "chunks of 75 tokens, each encoded on its own and joined, never silently truncated. "
      "embedding:name uses the textual-inversion embedding models/embeddings/name.safetensors (or .pt); "
      "with comfyui weighting, read as ComfyUI does (a missing one is left out, with a warning).",
      inputs=[In("clip", CLIP)],
      outputs=[Out("conditioning", CONDITIONING)],
      params=[Text("text", "", "The prompt."),
              Int("clip_skip", 0, "Skip this many final layers: 0 = last layer; 1 = A1111's 'clip skip 2'.",
                  min=0, max=10),
              Choice("weighting", ["comfyui", "a1111", "none"], "comfyui",
                     "How (word:1.2) syntax is read: comfyui (weights set, z_empty-relative), a1111 "
                     "((x) x1.1, [x] /1.1, BREAK; mean-preserving) or none (literal text). A prompt "
                     "without that syntax encodes the same in all three.")],
      refs=embedding_refs)
def text_encode(ctx, clip, text, clip_skip, weighting):
    from latentloom.app.sd import embeddings, text as sd_text
    vectors = embeddings.load(ctx.refs("text"), bare=weighting == "a1111")
    with ctx.env.clip(clip) as te:
        depth = te.encoder.config.num_hidden_layers
        if clip_skip >= depth:
            from latentloom.app.core.errors import UserError
            raise UserError(f"clip_skip {clip_skip} is too large for a text encoder of {depth} layers")
        if weighting == "none":
            return sd_text.encode(te, clip, text, clip_skip, vectors)
        from latentloom.app.sd import weighting as weights
        return weights.encode(te, clip, text, clip_skip, weighting, ctx.log, vectors)
