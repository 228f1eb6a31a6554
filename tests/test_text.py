"""Prompt encoding: identical to diffusers for short prompts, chunked for long ones, clip_skip."""
import torch

from latentloom.app.sd import text
from latentloom.app.sd.handles import ClipHandle


def comps_of(pipe):
    from latentloom.app.sd.runtime import TextModules
    return TextModules(pipe.text_encoder, pipe.tokenizer)


def test_short_prompt_equals_encode_prompt(tiny_pipe):
    ours = text.encode(comps_of(tiny_pipe), ClipHandle("k"), "a cat on a mat").embeds
    theirs, _ = tiny_pipe.encode_prompt("a cat on a mat", "cpu", 1, False)
    assert torch.equal(ours, theirs)


def test_long_prompt_is_chunked_not_truncated(tiny_pipe):
    words = " ".join(f"word{i}" for i in range(60))  # well over 75 tokens
    ids = tiny_pipe.tokenizer(words, add_special_tokens=False).input_ids
    chunks = text.token_chunks(tiny_pipe.tokenizer, words)
    assert len(chunks) == -(-len(ids) // 75) >= 2
    assert all(len(c) == 77 and c[0] == 49406 for c in chunks)
    assert sum(c[1:76].count(49407) for c in chunks[:-1]) == 0  # full chunks hold 75 prompt tokens
    assert [t for c in chunks for t in c[1:] if t != 49407] == ids  # every token kept, in order
    cond = text.encode(comps_of(tiny_pipe), ClipHandle("k"), words)
    assert cond.embeds.shape == (1, 77 * len(chunks), 32)
    # Each chunk is encoded on its own.
    first = text.encode_ids(tiny_pipe.text_encoder, chunks[0])
    assert torch.equal(cond.embeds[:, :77], first)


def test_clip_skip_is_the_earlier_hidden_state_through_the_final_norm(tiny_pipe):
    te = tiny_pipe.text_encoder
    ids = tiny_pipe.tokenizer("a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = te(ids, output_hidden_states=True).hidden_states
    expected = te.final_layer_norm(hidden[-2])  # transformers 5.x: no .text_model
    ours = text.encode(comps_of(tiny_pipe), ClipHandle("k"), "a cat", clip_skip=1).embeds
    assert torch.equal(ours, expected)
    assert not torch.equal(ours, text.encode(comps_of(tiny_pipe), ClipHandle("k"), "a cat").embeds)


def test_long_positive_and_short_negative_are_padded_with_empty_chunks(engine, tiny_dir):
    from tests.conftest import load_workflow
    long_prompt = " ".join(["red"] * 120)
    wf = load_workflow("txt2img.json", **{"ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "sampler.steps": 2,
                                           "latent.width": 64, "latent.height": 64,
                                           "positive.text": long_prompt})
    result = engine.run(wf)
    assert result.values["positive"]["conditioning"].embeds.shape[1] == 154
    assert len(result.outputs) == 1
