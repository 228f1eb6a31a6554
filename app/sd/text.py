"""Prompt encoding as diffusers' encode_prompt does it; long prompts are chunked, not truncated."""
import torch

from latentloom.app.sd.handles import Conditioning

CHUNK = 75  # tokens per chunk, plus start and end tokens = 77


def token_chunks(tokenizer, text, vectors=None):
    """Token id lists of 77: [start] + up to 75 tokens + [end] + padding, one per chunk.
    vectors: app.sd.embeddings.Vectors, whose names become placeholder ids."""
    if vectors is not None:
        ids = vectors.token_ids(tokenizer, text)
    else:
        ids = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    pieces = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)] or [[]]
    pad = tokenizer.pad_token_id
    return [[tokenizer.bos_token_id] + p + [tokenizer.eos_token_id] + [pad] * (CHUNK - len(p)) for p in pieces]


@torch.no_grad()
def encode_ids(text_encoder, ids, clip_skip=0):
    """One chunk of 77 ids -> [1, 77, dim], last layer or clip_skip layers earlier."""
    device = text_encoder.device
    ids = torch.tensor([ids], device=device)
    if clip_skip == 0:
        out = text_encoder(ids, attention_mask=None)[0]
    else:
        hidden = text_encoder(ids, attention_mask=None, output_hidden_states=True)[-1][-(clip_skip + 1)]
        # transformers 5.x: CLIPTextModel has no .text_model; 4.x has.
        out = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
    return out.to(dtype=text_encoder.dtype, device=device)


def encode(te, clip, text, clip_skip=0, vectors=None):
    """te: TextModules (encoder, tokenizer); vectors: textual-inversion embeddings (app.sd.embeddings)."""
    from latentloom.app.sd.embeddings import injected
    with injected(te.encoder, vectors):
        chunks = [encode_ids(te.encoder, ids, clip_skip) for ids in token_chunks(te.tokenizer, text, vectors)]
    return Conditioning(torch.cat(chunks, dim=1), clip, clip_skip)


def empty_chunk(te, clip_skip=0):
    return encode_ids(te.encoder, token_chunks(te.tokenizer, "")[0], clip_skip)
