"""Textual inversion: embedding:name in prompts equals diffusers' load_textual_inversion, pixel for pixel."""
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import diffusers
from latentloom.app.core.workflow import WorkflowError
from latentloom.app.engine.executor import Engine, NodeError
from tests.conftest import WORKFLOWS, load_workflow

NEGATIVE, SEED = "blurry", 9


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """models/embeddings/ with a one-vector diffusers file and a three-vector A1111 .pt."""
    root = tmp_path_factory.mktemp("models")
    folder = root / "embeddings"
    folder.mkdir()
    gen = torch.Generator().manual_seed(4)
    save_file({"<tinyemb>": torch.randn(32, generator=gen)}, str(folder / "tinyemb.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(3, 32, generator=gen)}, "name": "zxmulti", "step": 100},
               folder / "zxmulti.pt")
    save_file({"emb_params": torch.randn(2, 48, generator=gen)}, str(folder / "wide.safetensors"))
    return root


@pytest.fixture
def engine(runtime, tmp_path, models):
    from latentloom.nodes import catalog
    return Engine(catalog, output_dir=tmp_path / "out", models_dirs=[models], env=runtime, previews=False,
                  base_dirs=[WORKFLOWS])


def workflow(tiny_dir, prompt):
    return load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": prompt, "negative.text": NEGATIVE,
        "noise.seed": SEED, "sampler.steps": 3, "latent.width": 64, "latent.height": 64})


def image(engine, wf):
    return np.array(Image.open(engine.run(wf).outputs[0]))


def test_embeddings_match_load_textual_inversion(engine, tiny_dir, models):
    got = image(engine, workflow(tiny_dir, "a photo of embedding:tinyemb, with embedding:zxmulti in the style"))
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.load_textual_inversion(str(models / "embeddings" / "tinyemb.safetensors"), token="tinyemb")
    pipe.load_textual_inversion(str(models / "embeddings" / "zxmulti.pt"), token="zxmulti")
    expected = pipe("a photo of tinyemb, with zxmulti in the style", negative_prompt=NEGATIVE, height=64, width=64,
                    num_inference_steps=3, generator=torch.Generator().manual_seed(SEED)).images[0]
    assert np.array_equal(got, np.array(expected))
    plain = image(engine, workflow(tiny_dir, "a photo of tinyemb, with zxmulti in the style"))
    assert not np.array_equal(plain, got)  # without embedding: the words are plain words


def test_the_shared_tokenizer_is_untouched(engine, runtime, tiny_dir):
    engine.run(workflow(tiny_dir, "embedding:zxmulti"))
    key = next(k for k in runtime.store._models if str(tiny_dir) in k)
    assert len(runtime.store._models[key]["tokenizer"]) == 49408
    assert runtime.store._models[key]["text_encoder"].get_input_embeddings().num_embeddings == 49408


def test_missing_embedding_is_a_validation_error(tmp_path, models, tiny_dir):
    from latentloom.app.session.session import Session
    session = Session(models_dirs=[models], output_dir=tmp_path / "out")
    doc = workflow(tiny_dir, "a cat, embedding:nope").to_json()
    with pytest.raises(WorkflowError) as info:
        session.prepare(doc)
    folder = (models / "embeddings").resolve()
    assert [str(p) for p in info.value.problems] == [
        f"node 'positive' param 'text': embedding 'nope' not found: put nope.safetensors or nope.pt or nope.bin "
        f"into {folder}"]


def test_changing_the_embedding_file_reruns_the_text_encoder(engine, tiny_dir, models, tmp_path):
    import shutil
    root = tmp_path / "models"
    shutil.copytree(models, root)
    engine.models_dirs = [root]
    wf = workflow(tiny_dir, "embedding:tinyemb")
    engine.run(wf)
    assert "positive" in engine.run(wf).cached
    save_file({"<tinyemb>": torch.ones(32)}, str(root / "embeddings" / "tinyemb.safetensors"))
    assert "positive" in engine.run(wf).executed


def test_embedding_for_another_text_encoder_is_a_clear_error(engine, tiny_dir):
    with pytest.raises(NodeError) as info:
        engine.run(workflow(tiny_dir, "embedding:wide"))
    assert str(info.value) == ("node 'positive' (TextEncode) failed: embedding 'wide' has vectors of width 48; "
                               "this text encoder's are 32 (an embedding for another model)")


def test_a1111_mode_takes_bare_file_names(runtime, tiny_dir, models):
    from latentloom.app.sd import embeddings, text
    from latentloom.nodes.conditioning import embedding_refs
    refs = embedding_refs({"text": "tinyemb and embedding:zxmulti, cat", "weighting": "a1111"})
    assert [(r.name, r.required) for r in refs] == [("zxmulti", True), ("and", False), ("cat", False),
                                                   ("tinyemb", False)]
    assert [r.name for r in embedding_refs({"text": "tinyemb and embedding:zxmulti"})] == ["zxmulti"]
    found = {"tinyemb": embeddings.read(models / "embeddings" / "tinyemb.safetensors", "tinyemb")}
    model, clip, _ = runtime.load_checkpoint("tiny", str(tiny_dir), "", "fp32")
    with runtime.clip(clip) as te:
        bare = text.encode(te, clip, "a tinyemb cat", 0, embeddings.Vectors(found, bare=True)).embeds
        prefixed = text.encode(te, clip, "a embedding:tinyemb cat", 0, embeddings.Vectors(found)).embeds
        plain = text.encode(te, clip, "a tinyemb cat", 0, embeddings.Vectors(found)).embeds
    assert torch.equal(bare, prefixed) and not torch.equal(bare, plain)


def test_pickled_objects_are_refused(engine, tiny_dir, models, tmp_path):
    import shutil
    root = tmp_path / "models"
    shutil.copytree(models, root)
    torch.save({"string_to_param": {"*": torch.zeros(1, 32)}, "extra": Evil()}, root / "embeddings" / "evil.pt")
    engine.models_dirs = [root]
    with pytest.raises(NodeError) as info:
        engine.run(workflow(tiny_dir, "embedding:evil"))
    assert str(info.value) == ("node 'positive' (TextEncode) failed: embedding 'evil': evil.pt could not be read "
                               "with weights_only (UnpicklingError)")


class Evil:
    pass


# -- comfyui weighting: ComfyUI's rule (comfy/sd1_clip.py tokenize_with_weights, load_embed) ------
@pytest.fixture(scope="module")
def comfy_models(tmp_path_factory):
    """embeddings/tinyemb.safetensors; styles/zxmulti.pt, only in a sub-folder; dup.pt.safetensors
    (ComfyUI tries the name as written, then adds an extension); models/up.safetensors, outside."""
    root = tmp_path_factory.mktemp("models")
    (root / "embeddings" / "styles").mkdir(parents=True)
    gen = torch.Generator().manual_seed(5)
    save_file({"<tinyemb>": torch.randn(32, generator=gen)}, str(root / "embeddings" / "tinyemb.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(3, 32, generator=gen)}, "name": "zxmulti"},
               root / "embeddings" / "styles" / "zxmulti.pt")
    save_file({"<dup>": torch.randn(2, 32, generator=gen)}, str(root / "embeddings" / "dup.pt.safetensors"))
    save_file({"emb_params": torch.randn(1, 32, generator=gen)}, str(root / "up.safetensors"))
    return root


def test_comfyui_mode_reads_embedding_names_as_comfyui_does():
    """`embedding:` counts at a segment's start or after a space or newline, in lower case; the name
    is the next whitespace-free word (after any spaces); with commas it is also tried without them.
    Names that would leave the embeddings folder are not looked for."""
    from latentloom.nodes.conditioning import embedding_refs
    text = ("a,embedding:inword Embedding:caps (embedding:tinyemb:1.2) embedding:  spaced\nembedding:zxmulti, x "
            "embedding:../up embedding:~/home embedding:/etc/x embedding:sub/dup.pt embedding:")
    refs = embedding_refs({"text": text, "weighting": "comfyui"})
    assert [r.name for r in refs] == ["tinyemb", "spaced", "zxmulti,", "zxmulti", "sub/dup.pt"]
    assert all(not r.required and r.walk for r in refs)
    assert refs[0].candidates == ("tinyemb", "tinyemb.safetensors", "tinyemb.pt", "tinyemb.bin")
    assert refs[4].candidates[:2] == ("sub/dup.pt", "sub/dup.pt.safetensors")
    # The other modes keep their reading: embedding:NAME anywhere, required.
    assert [(r.name, r.required) for r in embedding_refs({"text": text, "weighting": "none"})] == [
        ("inword", True), ("caps", True), ("tinyemb", True), ("zxmulti", True), ("sub/dup.pt", True)]


def test_comfyui_mode_embeddings_equal_comfyuis_token_sequence(runtime, tmp_path, tiny_dir, comfy_models):
    """ComfyUI's tokens for the prompt below, written out: "a cat"; zxmulti's 3 vectors (found in a
    sub-folder; "zxmulti," is not a file, so the comma is cut off and tokenized after it); "nope" is
    not found: dropped with a warning, the text after it kept; "dup.pt" is dup.pt.safetensors;
    "a,embedding:tinyemb" and "Embedding:tinyemb" are plain text."""
    from latentloom.app.core.validate import load
    from latentloom.nodes import catalog
    engine = Engine(catalog, output_dir=tmp_path / "out", models_dirs=[comfy_models], env=runtime, previews=False)
    prompt = "a cat embedding:zxmulti, embedding:nope, red fox, embedding:dup.pt a,embedding:tinyemb Embedding:tinyemb"
    wf = load({"format": "latentloom.workflow", "version": 2, "nodes": {
        "ckpt": {"type": "LoadCheckpoint", "params": {"path": str(tiny_dir), "dtype": "fp32"}},
        "pos": {"type": "TextEncode", "params": {"text": prompt}, "inputs": {"clip": ["ckpt", "clip"]}}}}, catalog)
    events = []
    got = engine.run(wf, targets=["pos"], on_event=events.append).values["pos"]["conditioning"].embeds
    assert "embedding:nope, does not exist, ignoring it (as ComfyUI does)" in [getattr(e, "message", "")
                                                                               for e in events]

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.load_textual_inversion(str(comfy_models / "embeddings" / "styles" / "zxmulti.pt"), token="zxmulti")
    pipe.load_textual_inversion(str(comfy_models / "embeddings" / "dup.pt.safetensors"), token="dupemb")
    tok = pipe.tokenizer

    def ids(text):
        return tok(text, add_special_tokens=False).input_ids

    body = (ids("a cat") + tok.convert_tokens_to_ids(["zxmulti", "zxmulti_1", "zxmulti_2"]) + ids(",")
            + ids(", red fox,") + tok.convert_tokens_to_ids(["dupemb", "dupemb_1"])
            + ids("a,embedding:tinyemb") + ids("Embedding:tinyemb"))
    full = [tok.bos_token_id] + body + [tok.eos_token_id] + [tok.pad_token_id] * (75 - len(body))
    with torch.no_grad():
        expected = pipe.text_encoder(torch.tensor([full]))[0]
    assert torch.equal(got, expected)
