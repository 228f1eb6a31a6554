"""Prompt weighting as ComfyUI and A1111 read it: parsers, chunking and the embedding formulas.

comfyui: `(text)` x1.1 per level, `(text:1.3)` sets the weight (absolutely, even nested),
`\\(` `\\)` escape, `[x]` is literal text; chunks of 75 tokens that never split a weighted
segment (or an embedding) shorter than 8 tokens, as ComfyUI's tokenize_with_weights;
z = z_empty + (z - z_empty) * w for the tokens whose weight is not 1.
a1111: `(x)` x1.1, `[x]` /1.1, `(x:w)` multiplies, `\\(` escapes, `BREAK` starts a chunk;
chunks of 75 tokens that end after a comma when one is in the last 20 tokens;
z * w, rescaled so each chunk's mean is unchanged.
none: literal text (app.sd.text).
"""
import re

from latentloom.app.sd.handles import Conditioning

MODES = ("comfyui", "a1111", "none")
CHUNK = 75
MAX_WORD = 8          # ComfyUI: groups of this many tokens or more may be split across chunks
COMMA_BACKTRACK = 20  # A1111: how far back a full chunk looks for a comma to end after


# -- ComfyUI ------------------------------------------------------------------------------
def _groups(text):
    """Top-level '(...)' groups and the text between them; (pieces, balanced)."""
    pieces, cur, depth, balanced = [], "", 0, True
    for ch in text:
        if ch == "(":
            if depth == 0 and cur:
                pieces.append(cur)
                cur = ""
            cur += ch
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                pieces.append(cur + ch)
                cur = ""
            else:
                cur += ch
                balanced = balanced and depth > 0
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces, balanced and depth == 0


def _comfy_weights(text, weight, notes):
    out = []
    pieces, balanced = _groups(text)
    if not balanced:
        notes.append("unbalanced")
    for piece in pieces:
        w = weight
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner = piece[1:-1]
            w = weight * 1.1
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    w = float(inner[colon + 1:])
                    inner = inner[:colon]
                except ValueError:
                    pass
            out += _comfy_weights(inner, w, notes)
        else:
            out.append((piece, w))
    return out


def parse_comfyui(text):
    """[(text, weight)] and whether brackets were unbalanced (read as text then)."""
    notes = []
    escaped = text.replace("\\)", "\0\1").replace("\\(", "\0\2")
    pairs = [(t.replace("\0\1", ")").replace("\0\2", "("), w)
             for t, w in _comfy_weights(escaped, 1.0, notes)]
    return pairs, bool(notes)


def _tokenize(tokenizer, vectors):
    if vectors is not None:
        return lambda text: vectors.token_ids(tokenizer, text)
    return lambda text: tokenizer(text, add_special_tokens=False).input_ids


def comfyui_groups(tokenizer, pairs, vectors=None, missing=None):
    """ComfyUI's token groups, [[(id, weight)]]: each weighted segment is one group, except that
    `embedding:` at a segment's start or after a space or a newline starts a group of the vectors of
    the name after it (app.sd.embeddings.comfyui_split), and the words after the name one more.
    A name not found is dropped, as ComfyUI does, and appended to `missing`."""
    from latentloom.app.sd.embeddings import Word, comfyui_split
    found = vectors.found if vectors is not None else {}
    groups = []
    for segment, w in pairs:
        for piece in comfyui_split(segment):
            if isinstance(piece, Word):
                word = piece
                name, piece = word.resolve(found)
                if name is None and missing is not None:
                    missing.append(word.name)
                elif name is not None:
                    groups.append([(t, w) for t in vectors.placeholder_ids(tokenizer, name)])
            if piece:
                groups.append([(t, w) for t in tokenizer(piece, add_special_tokens=False).input_ids])
    return groups


def comfyui_chunks(tokenizer, pairs, vectors=None, missing=None):
    """[(ids, weights)] of 77 each: a group (comfyui_groups) of fewer than 8 tokens that does not
    fit moves whole to the next chunk (the rest padded); longer ones are split at the chunk's end."""
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    words = comfyui_groups(tokenizer, pairs, vectors, missing)
    chunks, batch = [], [(start, 1.0)]
    for group in words:
        large = len(group) >= MAX_WORD
        while group:
            if len(group) + len(batch) > CHUNK + 1:
                room = CHUNK + 1 - len(batch)
                if large:
                    batch += group[:room]
                    group = group[room:]
                chunks.append(_close(batch, end, pad))
                batch = [(start, 1.0)]
            else:
                batch += group
                group = []
    chunks.append(_close(batch, end, pad))
    return [([t for t, _ in c], [w for _, w in c]) for c in chunks]


def _close(batch, end, pad):
    batch = batch + [(end, 1.0)]
    return batch + [(pad, 1.0)] * (CHUNK + 2 - len(batch))


# -- A1111 --------------------------------------------------------------------------------
_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_a1111(text):
    """[(text, weight)] with ("BREAK", -1) markers, and whether brackets were unbalanced.
    As A1111: an unclosed '(' or '[' still weights the rest of the prompt; a stray closer is text."""
    res, rounds, squares, unbalanced = [], [], [], False

    def multiply(start, factor):
        for item in res[start:]:
            item[1] *= factor

    for m in _ATTENTION.finditer(text):
        tok, weight = m.group(0), m.group(1)
        if tok.startswith("\\"):
            res.append([tok[1:], 1.0])
        elif tok == "(":
            rounds.append(len(res))
        elif tok == "[":
            squares.append(len(res))
        elif weight is not None and rounds:
            multiply(rounds.pop(), float(weight))
        elif tok == ")" and rounds:
            multiply(rounds.pop(), 1.1)
        elif tok == "]" and squares:
            multiply(squares.pop(), 1 / 1.1)
        else:
            unbalanced = unbalanced or tok in (")", "]") or weight is not None
            for i, part in enumerate(_BREAK.split(tok)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    unbalanced = unbalanced or bool(rounds or squares)
    for pos in rounds:
        multiply(pos, 1.1)
    for pos in squares:
        multiply(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    merged = [res[0]]
    for item in res[1:]:
        if item[1] == merged[-1][1]:
            merged[-1][0] += item[0]
        else:
            merged.append(item)
    return [tuple(x) for x in merged], unbalanced


def a1111_chunks(tokenizer, pairs, vectors=None):
    """[(ids, weights)] of 77 each, split as A1111's tokenize_line does."""
    start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
    comma = tokenizer(",", add_special_tokens=False).input_ids[0]
    tokenize = _tokenize(tokenizer, vectors)
    chunks, ids, weights, last_comma = [], [], [], -1

    def flush(final=False):
        nonlocal ids, weights, last_comma
        if final and not ids and chunks:
            return
        pad = CHUNK - len(ids)
        chunks.append(([start] + ids + [end] * (pad + 1), [1.0] + weights + [1.0] * (pad + 1)))
        ids, weights, last_comma = [], [], -1

    for text, w in pairs:
        if text == "BREAK" and w == -1:
            flush()
            continue
        for t in tokenize(text):
            if t == comma:
                last_comma = len(ids)
            elif len(ids) == CHUNK and last_comma != -1 and len(ids) - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                rest_ids, rest_w = ids[cut:], weights[cut:]
                ids, weights = ids[:cut], weights[:cut]
                flush()
                ids, weights = rest_ids, rest_w
            if len(ids) == CHUNK:
                flush()
            ids.append(t)
            weights.append(w)
    flush(final=True)
    return chunks


# -- encoding ------------------------------------------------------------------------------
def parse(mode, text):
    return parse_comfyui(text) if mode == "comfyui" else parse_a1111(text)


def chunks(mode, tokenizer, text, vectors=None, missing=None):
    """(chunks, unbalanced); comfyui: embedding names not found are appended to `missing`."""
    pairs, unbalanced = parse(mode, text)
    if mode == "comfyui":
        return comfyui_chunks(tokenizer, pairs, vectors, missing), unbalanced
    return a1111_chunks(tokenizer, pairs, vectors), unbalanced


def apply(mode, z, weights, z_empty=None):
    """One chunk's embeddings [1, 77, dim] weighted by its 77 token weights."""
    import torch  # here: validation reads embedding names with this module's parser, without torch
    if all(w == 1.0 for w in weights):
        return z
    w = torch.tensor(weights, dtype=z.dtype, device=z.device)[None, :, None]
    if mode == "comfyui":
        return torch.where(w != 1.0, (z - z_empty) * w + z_empty, z)
    mean = z.mean()
    z = z * w
    return z * (mean / z.mean())


def encode(te, clip, text, clip_skip=0, mode="comfyui", log=None, vectors=None):
    """te: TextModules; vectors: textual-inversion embeddings. The weighted Conditioning; 'none'
    is app.sd.text.encode."""
    import torch
    from latentloom.app.sd import text as plain
    from latentloom.app.sd.embeddings import injected
    if mode == "none":
        return plain.encode(te, clip, text, clip_skip, vectors)
    missing = []
    pieces, unbalanced = chunks(mode, te.tokenizer, text, vectors, missing)
    for name in missing if log is not None else ():
        log(f"embedding:{name} does not exist, ignoring it (as ComfyUI does)")
    if unbalanced and log is not None:
        log(f"unbalanced brackets in the prompt: read as {mode} does")
    z_empty = None
    if mode == "comfyui" and any(w != 1.0 for _, ws in pieces for w in ws):
        z_empty = plain.empty_chunk(te, clip_skip)
    with injected(te.encoder, vectors):
        out = [apply(mode, plain.encode_ids(te.encoder, ids, clip_skip), ws, z_empty) for ids, ws in pieces]
    return Conditioning(torch.cat(out, dim=1), clip, clip_skip)
