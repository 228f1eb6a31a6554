"""Prompt weighting: the parsers, the chunking rules and each formula against an independent
computation fed to diffusers' pipeline as prompt_embeds (pixel for pixel)."""
import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.sd import weighting
from tests.conftest import load_workflow

SEED, STEPS = 7, 2


def test_comfyui_parser_sets_weights_absolutely_and_keeps_square_brackets():
    pairs, unbalanced = weighting.parse_comfyui("a (red fox:1.3) ((b)) (c (d:0.5)) \\(e\\) [f]")
    assert not unbalanced
    assert pairs == [("a ", 1.0), ("red fox", 1.3), (" ", 1.0), ("b", 1.1 * 1.1), (" ", 1.0),
                     ("c ", 1.1), ("d", 0.5), (" (e) [f]", 1.0)]
    assert weighting.parse_comfyui("((x:1.5))")[0] == [("x", 1.5)]
    assert weighting.parse_comfyui("(a:b:0.7)")[0] == [("a:b", 0.7)]
    assert weighting.parse_comfyui("(a:b)")[0] == [("a:b", 1.1)]


def test_comfyui_unbalanced_brackets_are_text():
    assert weighting.parse_comfyui("a (b c") == ([("a ", 1.0), ("(b c", 1.0)], True)
    pairs, unbalanced = weighting.parse_comfyui("a b) c")
    assert unbalanced and "".join(t for t, _ in pairs) == "a b) c" and {w for _, w in pairs} == {1.0}


def test_a1111_parser_multiplies_and_breaks():
    pairs, unbalanced = weighting.parse_a1111("a (b) [c] ((d:2)) \\(e\\) f BREAK g")
    assert not unbalanced
    assert pairs == [("a ", 1.0), ("b", 1.1), (" ", 1.0), ("c", 1 / 1.1), (" ", 1.0), ("d", 2 * 1.1),
                     (" (e) f", 1.0), ("BREAK", -1), ("g", 1.0)]
    # An unclosed bracket weights the rest (as A1111 does); a stray closer is text.
    assert weighting.parse_a1111("a (b") == ([("a ", 1.0), ("b", 1.1)], True)
    assert weighting.parse_a1111("a b) c") == ([("a b) c", 1.0)], True)


def test_comfyui_chunks_move_short_segments_and_split_long_ones(tiny_pipe):
    """As ComfyUI's tokenize_with_weights: a weighted segment (not a word) is one group; a group of
    fewer than 8 tokens that does not fit moves whole to the next chunk, a longer one is split."""
    tok = tiny_pipe.tokenizer
    words = ["cat"] * 74 + ["dog"]  # 75 one-token words fill the first chunk exactly
    chunks = weighting.comfyui_chunks(tok, [(" ".join(words) + " tabby", 1.0)])
    assert len(chunks) == 2 and all(len(i) == 77 and len(w) == 77 for i, w in chunks)
    cat, dog, tabby = (tok(x, add_special_tokens=False).input_ids for x in ("cat", "dog", "tabby"))
    assert chunks[0][0][1:77] == cat * 74 + dog + [tok.eos_token_id]
    assert chunks[1][0][1:1 + len(tabby)] == tabby
    word = tok("bumblebees", add_special_tokens=False).input_ids
    assert 1 < len(word) < 8
    # One long segment is split at the chunk's end, even inside a word.
    chunks = weighting.comfyui_chunks(tok, [(" ".join(["cat"] * 74 + ["bumblebees"]), 1.0)])
    assert chunks[0][0][75] == word[0] and chunks[0][0][76] == tok.eos_token_id
    assert chunks[1][0][1:len(word)] == word[1:]
    # A short weighted segment that does not fit moves whole; the first chunk is padded.
    pairs, _ = weighting.parse_comfyui(" ".join(["cat"] * 74) + " (bumblebees:1.2)")
    chunks = weighting.comfyui_chunks(tok, pairs)
    assert chunks[0][0][75] == tok.eos_token_id and chunks[0][0][1:75] == cat * 74
    assert chunks[1][0][1:1 + len(word)] == word and chunks[1][1][1:1 + len(word)] == [1.2] * len(word)


def test_comfyui_embeddings_are_groups_of_their_own(tiny_pipe):
    """`embedding:name` after a space is a group of its vectors; the text after it is another."""
    from latentloom.app.sd.embeddings import Vectors
    tok = tiny_pipe.tokenizer
    vectors = Vectors({"emb": torch.zeros(3, 32)})
    groups = weighting.comfyui_groups(tok, [("a cat embedding:emb, in snow", 1.0)], vectors)
    vocab = len(tok)
    assert [[t for t, _ in g] for g in groups] == [tok("a cat", add_special_tokens=False).input_ids,
                                                   [vocab, vocab + 1, vocab + 2],
                                                   tok(", in snow", add_special_tokens=False).input_ids]


def test_a1111_chunks_end_after_a_nearby_comma(tiny_pipe):
    tok = tiny_pipe.tokenizer
    text = " ".join(["cat"] * 70) + ", " + " ".join(["dog"] * 10)
    chunks = weighting.a1111_chunks(tok, [(text, 1.0)])
    comma = tok(",", add_special_tokens=False).input_ids[0]
    assert len(chunks) == 2
    assert chunks[0][0][71] == comma and chunks[0][0][72:] == [tok.eos_token_id] * 5
    assert chunks[1][0][1:11] == tok(" ".join(["dog"] * 10), add_special_tokens=False).input_ids


def _ids(tok, text):
    return tok(text, add_special_tokens=False).input_ids


def _encode(pipe, ids):
    ids = [49406] + ids + [49407] * (76 - len(ids))
    with torch.no_grad():
        return pipe.text_encoder(torch.tensor([ids]))[0]


def expected_embeds(pipe, mode):
    """The weighted prompt 'a (red:1.5) fox' built by hand from the text encoder."""
    tok = pipe.tokenizer
    a, red, fox = _ids(tok, "a"), _ids(tok, "red"), _ids(tok, "fox")
    ids = a + red + fox
    z = _encode(pipe, ids)
    w = torch.ones(77)
    w[1 + len(a):1 + len(a) + len(red)] = 1.5
    if mode == "none":  # literal text: the brackets are tokens
        return _encode(pipe, _ids(tok, "a (red:1.5) fox"))
    if mode == "comfyui":
        empty = _encode(pipe, [])
        out = z.clone()
        for j in range(77):
            if w[j] != 1.0:
                out[0, j] = (z[0, j] - empty[0, j]) * w[j] + empty[0, j]
        return out
    weighted = z * w[None, :, None]
    return weighted * (z.mean() / weighted.mean())


@pytest.mark.parametrize("mode", ["comfyui", "a1111", "none"])
def test_each_formula_matches_the_pipeline_with_hand_built_embeds(engine, tiny_pipe, tiny_dir, mode):
    wf = load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": "a (red:1.5) fox",
        "positive.weighting": mode, "negative.text": "blurry", "negative.weighting": mode,
        "noise.seed": SEED, "sampler.steps": STEPS, "latent.width": 64, "latent.height": 64})
    got = np.array(Image.open(engine.run(wf).outputs[0]))
    pipe = tiny_pipe
    pipe.set_progress_bar_config(disable=True)
    from diffusers import EulerDiscreteScheduler
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    negative = _encode(pipe, _ids(pipe.tokenizer, "blurry"))
    out = pipe(prompt_embeds=expected_embeds(pipe, mode), negative_prompt_embeds=negative, height=64,
               width=64, num_inference_steps=STEPS, guidance_scale=7.5,
               generator=torch.Generator("cpu").manual_seed(SEED))
    assert np.array_equal(got, np.array(out.images[0]))


def test_plain_prompts_encode_identically_in_every_mode(tiny_pipe):
    from latentloom.app.sd import text
    from latentloom.app.sd.handles import ClipHandle
    from latentloom.app.sd.runtime import TextModules
    te = TextModules(tiny_pipe.text_encoder, tiny_pipe.tokenizer)
    for prompt in ["", "a red fox in the snow, detailed", "a [red] fox"]:
        plain = text.encode(te, ClipHandle("k"), prompt).embeds
        for mode in ("comfyui", "a1111") if "[" not in prompt else ("comfyui",):
            assert torch.equal(weighting.encode(te, ClipHandle("k"), prompt, 0, mode).embeds, plain)


def test_version_1_files_keep_literal_prompts_and_new_nodes_default_to_comfyui():
    from latentloom.app.core.validate import load
    from latentloom.nodes import catalog
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "ckpt": {"type": "LoadCheckpoint"},
        "pos": {"type": "TextEncode", "params": {"text": "(x:2)"}, "inputs": {"clip": ["ckpt", "clip"]}},
        "bare": {"type": "TextEncode", "inputs": {"clip": ["ckpt", "clip"]}}}}
    wf = load(doc, catalog)
    assert wf.nodes["pos"].params["weighting"] == wf.nodes["bare"].params["weighting"] == "none"
    assert wf.to_json()["version"] == 2
    doc["version"] = 2
    assert load(doc, catalog).nodes["pos"].params["weighting"] == "comfyui"


def test_unbalanced_prompt_is_logged(engine, tiny_dir):
    wf = load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": "a (red fox",
        "positive.weighting": "comfyui", "sampler.steps": 1, "latent.width": 64, "latent.height": 64})
    events = []
    engine.run(wf, on_event=events.append)
    logs = [getattr(e, "message", "") for e in events]
    assert "unbalanced brackets in the prompt: read as comfyui does" in logs
