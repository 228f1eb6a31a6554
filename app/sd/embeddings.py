"""Textual-inversion embeddings in prompts: `embedding:name` and, in A1111 weighting mode, the bare
file name.

comfyui weighting reads them as ComfyUI's tokenizer does (comfyui_split): `embedding:` (lower case)
at the start of a weighted segment or after a space or a newline; the name is the next
whitespace-free word (`(embedding:name:1.2)`, `embedding:sub/name.pt`); the file is the name as
given, else name.safetensors, .pt, .bin; a name that is not found is tried without its commas
(`embedding:name,`), and else dropped with a warning. The other modes take
`embedding:name` anywhere ([\w-.] names), and a missing file is a validation error.
Names never leave the embeddings folder (no absolute path, no `..`, no `~`).

Files live in models/embeddings/ (.safetensors; A1111 .pt/.bin read with torch.load(weights_only=True)).
Each vector takes one token position, as diffusers' load_textual_inversion gives it (a multi-vector
embedding becomes `name name_1 ...`); nothing is added to the shared tokenizer or text encoder:
the vectors are swapped into the token-embedding output while one prompt is encoded.
"""
import re
from dataclasses import dataclass
from contextlib import contextmanager, nullcontext
from pathlib import Path

from latentloom.app.core.errors import UserError

EXTENSIONS = (".safetensors", ".pt", ".bin")
PREFIXED = re.compile(r"embedding:((?:[\w\-][\w\-.]*/)*[\w\-.]*[\w\-])", re.IGNORECASE)  # sub/name: a subfolder
WORD = re.compile(r"[\w\-.]*[\w\-]")


def names(text):
    """The names written as embedding:name, in order."""
    return [m.group(1) for m in PREFIXED.finditer(text)]


def words(text):
    """Candidate bare names (A1111 mode): every word that could be a file name."""
    return sorted({m.group(0) for m in WORD.finditer(PREFIXED.sub(" ", text))})


def candidates(name):
    """File names to look for: the name as given when it has an extension, else name + each extension."""
    return (name,) if name.lower().endswith(EXTENSIONS) else tuple(name + ext for ext in EXTENSIONS)


# -- ComfyUI's rule (comfyui weighting) -----------------------------------------------------------
SPLIT = re.compile(r" embedding:|\nembedding:")


@dataclass(frozen=True)
class Word:
    """`embedding:NAME REST`: NAME the first whitespace-free word, REST the words after it."""
    name: str
    rest: str

    def names(self):
        """The names looked for: as written, then without its commas (ComfyUI's second try)."""
        return [n for n in dict.fromkeys((self.name, self.name.strip(","))) if safe(n)]

    def resolve(self, found):
        """(the name found or None, the text left to tokenize), as ComfyUI's _try_get_embedding."""
        if self.name in found:
            return self.name, self.rest
        stripped = self.name.strip(",")
        if len(stripped) < len(self.name):
            return (stripped if stripped in found else None), f"{self.name[len(stripped):]} {self.rest}"
        return None, self.rest


def comfyui_split(segment):
    """One weighted segment as ComfyUI's tokenize_with_weights splits it: text pieces and Words."""
    parts = SPLIT.split(segment)
    out = []
    for item in [parts[0]] + ["embedding:" + p for p in parts[1:]]:
        if item.startswith("embedding:"):
            words = item[len("embedding:"):].split()
            out.append(Word(words[0] if words else "", " ".join(words[1:])))
        elif item:
            out.append(item)
    return out


def comfyui_names(text):
    """The embedding names a comfyui-weighted prompt may use, in order, each once."""
    from latentloom.app.sd.weighting import parse_comfyui
    found = [n for segment, _ in parse_comfyui(text)[0] for piece in comfyui_split(segment)
             if isinstance(piece, Word) for n in piece.names()]
    return list(dict.fromkeys(found))


def comfyui_candidates(name):
    """ComfyUI's load_embed: the name as given, then name + each extension."""
    return (name,) + tuple(name + ext for ext in EXTENSIONS)


def safe(name):
    """A name that stays inside the folder it is looked for in."""
    parts = name.replace("\\", "/").split("/")
    return (bool(name) and "\x00" not in name and not name.startswith(("/", "~", "\\"))
            and ".." not in parts and len(name) <= 255)


def read(path, label):
    """[n, dim] vectors from a diffusers or A1111 embedding file."""
    import torch  # here: validation reads the names above without loading torch
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file
        data = load_file(str(path))
    else:
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"embedding {label!r}: {path.name} could not be read with weights_only "
                            f"({type(e).__name__})") from e
    if isinstance(data, dict) and "string_to_param" in data:  # A1111 .pt
        data = data["string_to_param"]["*"]
    elif isinstance(data, dict) and "clip_l" in data:  # an SDXL embedding: its CLIP-L half, as ComfyUI takes
        data = data["clip_l"]
    elif isinstance(data, dict) and len(data) == 1:  # diffusers {token: tensor}, A1111 {"emb_params": ...}
        data = next(iter(data.values()))
    if not isinstance(data, torch.Tensor):
        raise UserError(f"embedding {label!r}: {path.name} is not a textual-inversion embedding")
    return data.reshape(-1, data.shape[-1]).float()


class Vectors:
    """The embeddings one prompt uses: name -> [n, dim], tokenized as placeholder ids past the vocabulary."""

    def __init__(self, found, bare=False):
        self.found = found  # {name: tensor}
        self.bare = bare
        self.table = []     # placeholder index -> vector

    def pattern(self):
        alternatives = [re.escape(n) for n in sorted(self.found, key=len, reverse=True)]
        prefixed = r"embedding:(" + "|".join(alternatives) + r")(?![\w\-])"
        if not self.bare:
            return re.compile(prefixed, re.IGNORECASE)
        return re.compile(prefixed + r"|(?<![\w\-.:])(" + "|".join(alternatives) + r")(?![\w\-])")

    def token_ids(self, tokenizer, text):
        """Token ids of text without start/end tokens; each embedding vector gets a placeholder id."""
        ids, pos = [], 0
        for m in self.pattern().finditer(text):
            ids += tokenizer(text[pos:m.start()], add_special_tokens=False).input_ids
            ids += self.placeholder_ids(tokenizer, self._key(m.group(1) or m.group(m.lastindex)))
            pos = m.end()
        return ids + tokenizer(text[pos:], add_special_tokens=False).input_ids

    def placeholder_ids(self, tokenizer, name):
        """Ids past the vocabulary for the vectors of `name`, which the encoder gets swapped in."""
        start = len(tokenizer) + len(self.table)
        self.table += list(self.found[name])
        return list(range(start, start + len(self.found[name])))

    def _key(self, written):
        return next(n for n in self.found if n.lower() == written.lower())

    @contextmanager
    def injected(self, encoder):
        """Swap the vectors in for the placeholder ids while the encoder runs."""
        layer = encoder.get_input_embeddings()
        vocab = layer.num_embeddings
        width = layer.embedding_dim
        for name, vectors in self.found.items():
            if vectors.shape[-1] != width:
                raise UserError(f"embedding {name!r} has vectors of width {vectors.shape[-1]}; this text "
                                f"encoder's are {width} (an embedding for another model)")
        seen = {}

        def before(module, args):
            seen["ids"] = args[0]
            return (args[0].clamp(max=vocab - 1),)

        def after(module, args, out):
            ids = seen["ids"]
            placed = ids >= vocab
            if not placed.any():
                return out
            out = out.clone()
            for b, i in placed.nonzero().tolist():
                out[b, i] = self.table[ids[b, i] - vocab].to(out.dtype)
            return out

        handles = [layer.register_forward_pre_hook(before), layer.register_forward_hook(after)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()


def injected(encoder, vectors):
    return vectors.injected(encoder) if vectors is not None else nullcontext()


def load(paths, bare=False):
    """Vectors for {name: path} (what the engine resolved), or None when there are none."""
    if not paths:
        return None
    return Vectors({name: read(path, name) for name, path in paths.items()}, bare)
