"""LoadLoRA: images equal diffusers' load_lora_weights + set_adapters, pixel for pixel."""
import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import diffusers
from latentloom.app.engine.executor import NodeError
from latentloom.app.sd import lora
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
from tests.conftest import WORKFLOWS
from tests.support.lora_files import make_peft_lora, other_architecture, peft_to_kohya

PROMPT, NEGATIVE, SEED, STEPS, CFG = "a red fox in the snow", "blurry", 1234, 3, 7.5
pytestmark = pytest.mark.filterwarnings("ignore:Already found a .peft_config.")  # reference pipelines
STANDARD = ["peft", "kohya", "second"]  # loaded into the reference pipeline under these names


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.tiny import tiny_components
    comps = tiny_components()
    wide = other_architecture(comps)
    d = tmp_path_factory.mktemp("loras")
    out = {
        "peft": make_peft_lora(comps, d / "peft.safetensors", seed=1),
        "second": make_peft_lora(comps, d / "second.safetensors", rank=2, seed=2),
        "wrong": make_peft_lora(wide, d / "wrong.safetensors", seed=3),
        "wrong_te": make_peft_lora({"unet": comps["unet"], "text_encoder": wide["text_encoder"]},
                                   d / "wrong_te.safetensors", seed=4),
        "unet_only": make_peft_lora(comps, d / "unet_only.safetensors", parts=("unet",), seed=5),
    }
    out["kohya"] = peft_to_kohya(make_peft_lora(comps, d / "k_src.safetensors", seed=6), d / "kohya.safetensors")
    return out


def _pipeline(tiny_dir):
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                            requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def plain_pipe(tiny_dir):
    """A pipeline that never had a LoRA."""
    return _pipeline(tiny_dir)


@pytest.fixture(scope="module")
def ref(tiny_dir, files):
    """The reference: diffusers' own load_lora_weights for each file."""
    pipe = _pipeline(tiny_dir)
    for name in STANDARD + ["unet_only"]:
        pipe.load_lora_weights(str(files[name]), adapter_name=name)
    return pipe


def pipe_image(pipe, names=None, weights=None):
    """names None: no set_adapters call (the plain pipeline)."""
    if names is not None:
        pipe.set_adapters(names, weights)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, **overrides("euler"))
    out = pipe(PROMPT, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=STEPS,
               guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(SEED))
    return np.array(out.images[0])


def lora_doc(tiny_dir, *loras):
    """workflows/lora.json with one LoadLoRA per (path, strength_model, strength_clip), chained."""
    assert SCHEDULERS["euler"][0] == "EulerDiscreteScheduler"
    doc = json.loads((WORKFLOWS / ("lora.json" if loras else "txt2img.json")).read_text())
    nodes = doc["nodes"]
    ids = [f"lora{i}" if i else "lora" for i in range(len(loras))]
    for i, nid in enumerate(ids[1:], 1):
        nodes[nid] = {"type": "LoadLoRA", "inputs": {"model": [ids[i - 1], "model"], "clip": [ids[i - 1], "clip"]}}
    for nid, node in nodes.items():
        for port, (src, out) in node.get("inputs", {}).items():
            if src == "lora" and nid not in ids:
                node["inputs"][port] = [ids[-1], out]
    for nid, (path, sm, sc) in zip(ids, loras):
        nodes[nid]["params"] = {"path": str(path), "strength_model": sm, "strength_clip": sc}
    sets = {"ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": PROMPT, "negative.text": NEGATIVE,
            "noise.seed": SEED, "scheduler.name": "euler", "sampler.steps": STEPS, "sampler.cfg": CFG,
            "latent.width": 64, "latent.height": 64, "latent.batch_size": 1}
    for key, value in sets.items():
        nid, param = key.split(".")
        nodes[nid].setdefault("params", {})[param] = value
    return doc


def run(engine, doc):
    from latentloom.app.core.validate import load
    from latentloom.nodes import catalog
    return engine.run(load(doc, catalog))


def engine_image(engine, doc):
    result = run(engine, doc)
    assert len(result.outputs) == 1
    return np.array(Image.open(result.outputs[0]))


def test_kohya_file_reads_back_to_the_same_weights(tiny_dir, files, tmp_path):
    from peft.tuners.tuners_utils import BaseTunerLayer
    pipe = _pipeline(tiny_dir)
    k_src = files["kohya"].parent / "k_src.safetensors"
    pipe.load_lora_weights(str(k_src), adapter_name="a")
    pipe.load_lora_weights(str(files["kohya"]), adapter_name="k")
    layers = 0
    for module in [*pipe.unet.modules(), *pipe.text_encoder.modules()]:
        if isinstance(module, BaseTunerLayer):
            layers += 1
            assert torch.equal(module.lora_A["a"].weight, module.lora_A["k"].weight)
            assert torch.equal(module.lora_B["a"].weight, module.lora_B["k"].weight)
            assert module.scaling["a"] == module.scaling["k"] == 1.0
    assert layers == 4 * 2 * 4 + 4 * 3  # attn1/attn2 in 4 transformer blocks; 3 text layers


@pytest.mark.parametrize("name", ["peft", "kohya"])
@pytest.mark.parametrize("s", [1.0, 0.5])
def test_lora_matches_pipeline(engine, ref, plain_pipe, tiny_dir, files, name, s):
    got = engine_image(engine, lora_doc(tiny_dir, (files[name], s, s)))
    assert np.array_equal(got, pipe_image(ref, [name], [s]))
    assert not np.array_equal(got, pipe_image(plain_pipe))


@pytest.mark.parametrize("name", ["peft", "kohya"])
def test_zero_strength_is_the_plain_model(engine, ref, plain_pipe, tiny_dir, files, name):
    got = engine_image(engine, lora_doc(tiny_dir, (files[name], 0.0, 0.0)))
    assert np.array_equal(got, pipe_image(ref, [name], [0.0]))
    assert np.array_equal(got, pipe_image(plain_pipe))


def test_stacked_loras_match_pipeline(engine, ref, tiny_dir, files):
    got = engine_image(engine, lora_doc(tiny_dir, (files["peft"], 0.8, 0.8), (files["second"], -0.6, -0.6)))
    assert np.array_equal(got, pipe_image(ref, ["peft", "second"], [0.8, -0.6]))


def test_model_and_clip_strengths_are_separate(engine, ref, tiny_dir, files):
    got = engine_image(engine, lora_doc(tiny_dir, (files["kohya"], 1.0, 0.5), (files["peft"], 0.0, 1.5)))
    expected = pipe_image(ref, ["kohya", "peft"], [{"unet": 1.0, "text_encoder": 0.5},
                                                   {"unet": 0.0, "text_encoder": 1.5}])
    assert np.array_equal(got, expected)


def test_same_file_twice_adds_strengths(engine, ref, tiny_dir, files):
    got = engine_image(engine, lora_doc(tiny_dir, (files["peft"], 0.25, 0.25), (files["peft"], 0.25, 0.25)))
    assert np.array_equal(got, pipe_image(ref, ["peft"], [0.5]))


def test_unet_only_lora(engine, ref, tiny_dir, files):
    got = engine_image(engine, lora_doc(tiny_dir, (files["unet_only"], 0.7, 1.0)))
    assert np.array_equal(got, pipe_image(ref, ["unet_only"], [{"unet": 0.7}]))


def branch_doc(tiny_dir, files, plain_first):
    """A LoRA branch and a plain branch sharing checkpoint, latent, noise and scheduler."""
    doc = lora_doc(tiny_dir, (files["peft"], 1.0, 1.0))
    nodes = doc["nodes"]
    plain = {}
    for nid in ("positive", "negative", "sampler", "decode", "save"):
        node = copy.deepcopy(nodes[nid])
        for port, (src, out) in node["inputs"].items():
            node["inputs"][port] = [{"lora": "ckpt"}.get(src, src if src in ("ckpt", "latent", "noise", "scheduler")
                                                         else src + "_plain"), out]
        plain[nid + "_plain"] = node
    plain["save_plain"]["params"]["filename_prefix"] = "plain"
    if plain_first:
        doc["nodes"] = {"ckpt": nodes["ckpt"], **plain, **{k: v for k, v in nodes.items() if k != "ckpt"}}
    else:
        nodes.update(plain)
    return doc


@pytest.mark.parametrize("plain_first", [True, False], ids=["plain-first", "lora-first"])
def test_branches_do_not_leak(engine, ref, plain_pipe, tiny_dir, files, plain_first):
    result = run(engine, branch_doc(tiny_dir, files, plain_first))
    order = [n for n in result.executed if n in ("sampler", "sampler_plain")]
    assert order == (["sampler_plain", "sampler"] if plain_first else ["sampler", "sampler_plain"])
    got = {p.rsplit("/", 1)[-1].split("_")[0]: np.array(Image.open(p)) for p in result.outputs}
    assert np.array_equal(got["plain"], pipe_image(plain_pipe))
    assert np.array_equal(got["lora"], pipe_image(ref, ["peft"], [1.0]))


def test_strength_change_reruns_only_downstream(engine, runtime, tiny_dir, files, tmp_path):
    path = make_peft_lora(tiny_dir, tmp_path / "fresh.safetensors", seed=7)
    reads, loads = lora.reads, runtime.store.loads
    first = run(engine, lora_doc(tiny_dir, (path, 1.0, 1.0)))
    assert lora.reads == reads + 1 and runtime.store.loads <= loads + 1
    loads = runtime.store.loads
    unet = runtime.store.get(first.values["lora"]["model"].checkpoint)["unet"]
    name = lora.adapter_name(first.values["lora"]["model"].loras[0].identity)
    layer = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.lora_A[name]
    second = run(engine, lora_doc(tiny_dir, (path, 0.5, 1.0)))
    # The clip handle is unchanged, so the text encoders stay cached.
    assert set(second.executed) == {"lora", "sampler", "decode", "save"}
    assert set(second.cached) == {"ckpt", "latent", "noise", "scheduler", "positive", "negative"}
    third = run(engine, lora_doc(tiny_dir, (path, 0.5, 0.25)))
    assert set(third.executed) == {"lora", "positive", "negative", "sampler", "decode", "save"}
    assert lora.reads == reads + 1 and runtime.store.loads == loads
    assert unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.lora_A[name] is layer
    assert not np.array_equal(np.array(Image.open(first.outputs[0])), np.array(Image.open(second.outputs[0])))


@pytest.mark.parametrize("bad", ["wrong", "wrong_te"])
def test_lora_that_does_not_fit_fails_on_its_node(engine, runtime, plain_pipe, tiny_dir, files, bad):
    engine_image(engine, lora_doc(tiny_dir, (files["peft"], 1.0, 1.0)))  # other adapters are loaded too
    plain = run(engine, lora_doc(tiny_dir))
    comps = runtime.store.get(plain.values["ckpt"]["model"].checkpoint)
    adapters = {part: sorted(getattr(comps[part], "peft_config", {})) for part in ("unet", "text_encoder")}
    with pytest.raises(NodeError) as err:
        run(engine, lora_doc(tiny_dir, (files[bad], 1.0, 1.0)))
    assert err.value.node_id == "lora" and files[bad].name in err.value.message
    assert "does not fit" in err.value.message
    assert adapters == {part: sorted(getattr(comps[part], "peft_config", {})) for part in ("unet", "text_encoder")}
    after = engine_image(engine, lora_doc(tiny_dir))
    assert np.array_equal(np.array(Image.open(plain.outputs[0])), after)
    assert np.array_equal(after, pipe_image(plain_pipe))


def test_failed_lora_leaves_fresh_modules_unwrapped(tiny_dir, files, tmp_path):
    """On a checkpoint without adapters, a failed LoRA leaves no PEFT layers behind."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from latentloom.app.sd.runtime import Runtime
    env = Runtime("cpu")
    key = env.store.load("fresh", str(tiny_dir))
    comps = env.store.get(key)
    state = {k: v.clone() for k, v in comps["unet"].state_dict().items()}
    with pytest.raises(Exception, match="wrong_te.safetensors"):
        lora.prepare(env, key, key, str(files["wrong_te"]), "id-wrong-te")
    for part in ("unet", "text_encoder"):
        assert not any(isinstance(m, BaseTunerLayer) for m in comps[part].modules())
        assert not getattr(comps[part], "peft_config", None)
    after = comps["unet"].state_dict()
    assert after.keys() == state.keys() and all(torch.equal(state[k], after[k]) for k in state)
    assert comps["lora"]["adapters"] == {}


def test_bad_files_fail_with_the_file_name(engine, tiny_dir, tmp_path):
    pickle = tmp_path / "old.pt"
    pickle.write_bytes(b"not read")
    junk = tmp_path / "junk.safetensors"
    save_file({"foo.weight": torch.zeros(2)}, str(junk))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    for path, words in ((pickle, "only .safetensors"), (junk, "unknown key layout"), (garbage, "not a readable")):
        with pytest.raises(NodeError) as err:
            run(engine, lora_doc(tiny_dir, (path, 1.0, 1.0)))
        assert err.value.node_id == "lora" and path.name in err.value.message and words in err.value.message


def test_evicted_checkpoint_gets_its_adapters_back(ref, tiny_dir, tiny_single_file, files, tmp_path):
    """The store may drop a checkpoint; cached LoRA handles re-inject into the reloaded modules."""
    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.runtime import Runtime
    from latentloom.nodes import catalog
    engine = Engine(catalog, output_dir=tmp_path / "out", env=Runtime("cpu", max_models=1), previews=False)
    from latentloom.app.core.validate import load
    wf = load(lora_doc(tiny_dir, (files["peft"], 0.5, 0.5)), catalog)
    assert engine.run(wf, targets=["lora"]).executed == ["ckpt", "lora"]  # injects into the loaded modules
    single, config = tiny_single_file
    other = lora_doc(tiny_dir)
    other["nodes"]["ckpt"]["params"].update(path=str(single), config=str(config))
    run(engine, other)  # loading this one evicts the first checkpoint
    loads = engine.env.store.loads
    result = engine.run(wf)
    assert engine.env.store.loads == loads + 1
    assert {"ckpt", "lora"} <= set(result.cached) and {"positive", "sampler"} <= set(result.executed)
    assert np.array_equal(np.array(Image.open(result.outputs[0])), pipe_image(ref, ["peft"], [0.5]))
