"""Build the OpenAI CLIP BPE tokenizer files (Hugging Face layout) offline.

Reads ``bpe_simple_vocab_16e6.txt.gz`` (directly, or from inside an
open_clip wheel) and writes ``vocab.json``, ``merges.txt``,
``tokenizer_config.json`` and ``special_tokens_map.json``. The vocabulary is
built exactly as OpenAI's ``simple_tokenizer.py`` builds its encoder.

Usage: python tools/build_clip_tokenizer.py WHEEL_OR_GZ [OUT_DIR]
(OUT_DIR defaults to resources/sd15/tokenizer).
"""

import gzip
import json
import sys
import zipfile
from pathlib import Path

GZ_NAME = "bpe_simple_vocab_16e6.txt.gz"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "resources" / "sd15" / "tokenizer"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# Same values as the SD 1.5 / openai/clip-vit-large-patch14 tokenizer.
TOKENIZER_CONFIG = {
    "tokenizer_class": "CLIPTokenizer",
    "model_max_length": 77,
    "bos_token": BOS,
    "eos_token": EOS,
    "unk_token": EOS,
    "pad_token": EOS,
    "do_lower_case": True,
    "add_prefix_space": False,
    "errors": "replace",
}
SPECIAL_TOKENS_MAP = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}


def read_bpe_text(path):
    """Return the decoded BPE text from a .gz file or from a wheel/zip holding it."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            member = next(n for n in zf.namelist() if n.endswith("/" + GZ_NAME) or n == GZ_NAME)
            data = zf.read(member)
    else:
        data = path.read_bytes()
    return gzip.decompress(data).decode("utf-8")


def bytes_to_unicode():
    """OpenAI's byte -> printable unicode char table (256 entries, fixed order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_vocab_and_merges(bpe_text):
    """Return (vocab dict token->id, list of merge pairs) as simple_tokenizer.py does."""
    merges = bpe_text.split("\n")[1 : 49152 - 256 - 2 + 1]  # skip the header line
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += [BOS, EOS]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build(src, out_dir=DEFAULT_OUT):
    """Write the four tokenizer files into out_dir; returns out_dir."""
    vocab, merges = build_vocab_and_merges(read_bpe_text(src))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # newline="\n" keeps the bytes identical on every platform.
    with open(out / "vocab.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(out / "merges.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    for name, obj in (("tokenizer_config.json", TOKENIZER_CONFIG), ("special_tokens_map.json", SPECIAL_TOKENS_MAP)):
        with open(out / name, "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    print(build(*sys.argv[1:]))
