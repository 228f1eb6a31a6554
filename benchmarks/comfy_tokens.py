"""Check TextEncode's comfyui chunking against ComfyUI's own tokenizer (a ComfyUI checkout needed):

    python -m benchmarks.comfy_tokens --comfy ~/ComfyUI --tokenizer path/to/model/tokenizer [--deps DIR]

Random prompts (weights, multi-token words, embeddings, over 75 tokens) go through ComfyUI's
SDTokenizer.tokenize_with_weights and through app.sd.weighting; the token ids, weights and chunk
boundaries must be equal (embedding vectors compared by position). Prints the count that match.
"""
import argparse
import random
import sys
import tempfile
from pathlib import Path

WORDS = ("a cat photorealistic extraordinarily bumblebees lighthouse, masterpiece detailed (snow) "
         "(red fox:1.3) ((glowing)) embedding:tri embedding:tri, of the").split(" ")


def prompts(n, seed):
    rng = random.Random(seed)
    out = [" ".join(["cat"] * 73 + ["photorealistic"]), " ".join(["cat"] * 72) + " embedding:tri, dog"]
    return out + [" ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120))) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comfy", required=True, help="a ComfyUI checkout")
    ap.add_argument("--tokenizer", required=True, help="a CLIP tokenizer folder")
    ap.add_argument("--deps", help="a folder of ComfyUI's extra dependencies (einops...), searched last")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPTokenizer
    from latentloom.app.sd import embeddings, weighting
    emb_dir = Path(tempfile.mkdtemp())
    save_file({"emb_params": torch.zeros(3, 8)}, str(emb_dir / "tri.safetensors"))
    sys.argv = ["main.py", "--cpu"]
    sys.path.insert(0, args.comfy)
    if args.deps:
        sys.path.append(args.deps)
    import comfy.options
    comfy.options.enable_args_parsing()
    from comfy import sd1_clip
    theirs_tok = sd1_clip.SDTokenizer(tokenizer_path=args.tokenizer, embedding_directory=str(emb_dir))
    tok = CLIPTokenizer.from_pretrained(args.tokenizer)
    cases = prompts(args.count, args.seed)
    same = 0
    for text in cases:
        theirs = [(["E" if torch.is_tensor(t) else t for t, _ in c], [round(w, 6) for _, w in c])
                  for c in theirs_tok.tokenize_with_weights(text)]
        vectors = embeddings.Vectors({"tri": torch.zeros(3, 8)}) if "embedding:" in text else None
        ours = [(["E" if i >= len(tok) else i for i in ids], [round(w, 6) for w in ws])
                for ids, ws in weighting.chunks("comfyui", tok, text, vectors)[0]]
        same += theirs == ours
        if theirs != ours:
            print("differs:", text[:100])
    print(f"{same} of {len(cases)} prompts chunk exactly as ComfyUI's tokenizer")


if __name__ == "__main__":
    main()
