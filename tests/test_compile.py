"""--compile, fused LoRAs, --lowvram, batches and previews, on the CPU with the tiny model.

Graph reuse is counted with dynamo's own counters. The "eager" dynamo backend captures the same
graphs as inductor without generating code, so these tests stay fast; one test runs inductor."""
import numpy as np
import pytest
import torch
from PIL import Image

import diffusers
from latentloom.app.engine import events as ev
from latentloom.app.engine.executor import Engine
from latentloom.app.sd import speed
from latentloom.app.sd.runtime import Runtime
from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS, load_workflow
from tests.test_lora import lora_doc, pipe_image, run
from tests.test_lora import files  # noqa: F401  (fixture)

PROMPT, NEGATIVE, SEED = "a red fox in the snow", "blurry", 1234
pytestmark = pytest.mark.filterwarnings("ignore:Already found a .peft_config.")


def graphs():
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


@pytest.fixture(scope="module")
def compiled():
    """A runtime compiling with dynamo's eager backend (graph capture, no code generation)."""
    return Runtime("cpu", compile="eager")


@pytest.fixture
def cengine(compiled, tmp_path):
    return Engine(catalog, output_dir=tmp_path / "out", env=compiled, previews=False, base_dirs=[WORKFLOWS])


def image(engine, doc_or_wf):
    result = run(engine, doc_or_wf) if isinstance(doc_or_wf, dict) else engine.run(doc_or_wf)
    return [np.array(Image.open(p)) for p in result.outputs]


def txt2img(tiny_dir, **sets):
    return load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": PROMPT, "negative.text": NEGATIVE,
        "noise.seed": SEED, "scheduler.name": "euler", "sampler.steps": 3, "sampler.cfg": 7.5,
        "latent.width": 64, "latent.height": 64, **sets})


def fast_pipeline(tiny_dir, lora_files=()):
    """diffusers' own speed recipe: LoRAs fused, QKV fused, channels_last."""
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                            requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    for name, path, weight in lora_files:
        pipe.load_lora_weights(str(path), adapter_name=name)
    if lora_files:
        pipe.set_adapters([n for n, _, _ in lora_files], [w for _, _, w in lora_files])
        pipe.fuse_lora(components=["unet"])
    pipe.fuse_qkv_projections(unet=True, vae=False)
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    return pipe


def test_compiled_images_equal_diffusers_fused_recipe(cengine, tiny_dir):
    got = image(cengine, txt2img(tiny_dir))
    assert np.array_equal(got[0], pipe_image(fast_pipeline(tiny_dir)))


def test_seed_prompt_and_cfg_edits_do_not_recompile(cengine, tiny_dir):
    image(cengine, txt2img(tiny_dir))  # compiles (or reuses the module's graphs)
    before = graphs()
    assert before > 0
    first = image(cengine, txt2img(tiny_dir, **{"noise.seed": 5}))
    image(cengine, txt2img(tiny_dir, **{"noise.seed": 6, "positive.text": "a blue bird"}))
    last = image(cengine, txt2img(tiny_dir, **{"noise.seed": 6, "sampler.cfg": 4.0}))
    assert graphs() == before
    assert not np.array_equal(first[0], last[0])


def test_lora_is_fused_and_strength_edits_do_not_recompile(cengine, compiled, tiny_dir, files):  # noqa: F811
    got = image(cengine, lora_doc(tiny_dir, (files["peft"], 1.0, 1.0)))
    before = graphs()
    result = run(cengine, lora_doc(tiny_dir, (files["peft"], 0.5, 0.5)))
    half = [np.array(Image.open(p)) for p in result.outputs]
    assert graphs() == before
    comps = compiled.components(result.values["lora"]["model"].checkpoint)
    assert [s for _, s in comps["fused_lora"]] == [0.5]
    assert comps["unet"]._compiled_call_impl is not None
    assert np.array_equal(half[0], pipe_image(fast_pipeline(tiny_dir, [("peft", files["peft"], 0.5)])))
    assert np.array_equal(got[0], pipe_image(fast_pipeline(tiny_dir, [("peft", files["peft"], 1.0)])))
    # Dropping the LoRA unfuses: the plain image again.
    plain = image(cengine, txt2img(tiny_dir))
    assert np.array_equal(plain[0], pipe_image(fast_pipeline(tiny_dir)))


def test_without_a_working_compiler_runs_eager_with_one_log_line(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "_probed", {})
    env = Runtime("cpu", compile="no_such_backend")
    assert env.backend is None
    engine = Engine(catalog, output_dir=tmp_path, env=env, previews=False)
    events = []
    engine.run(txt2img(tiny_dir), on_event=events.append)
    logs = [e.message for e in events if isinstance(e, ev.NodeLog) and "--compile" in e.message]
    assert len(logs) == 1
    assert logs[0].startswith("--compile: torch.compile (no_such_backend) does not work here (")
    assert logs[0].endswith("); running eager")
    assert env.components(env.store.load("x", str(tiny_dir)))["unet"]._compiled_call_impl is None


def test_lowvram_on_the_cpu_is_a_no_op_with_a_log_line(engine, tiny_dir, tmp_path):
    env = Runtime("cpu", lowvram=True)
    assert env.offload is None
    events = []
    Engine(catalog, output_dir=tmp_path, env=env, previews=False).run(txt2img(tiny_dir), on_event=events.append)
    assert "--lowvram: nothing to offload on the CPU (models stay in RAM)" in [
        e.message for e in events if isinstance(e, ev.NodeLog)]


def test_batches_run_as_one_unet_batch_and_previews_skip_the_vae(runtime, tiny_dir, tmp_path):
    engine = Engine(catalog, output_dir=tmp_path, env=runtime, previews=True)
    wf = txt2img(tiny_dir, **{"latent.batch_size": 3})
    engine.run(wf)  # load
    comps = runtime.components(engine.run(wf).values["ckpt"]["model"].checkpoint)
    unet_batches, decodes = [], []
    h1 = comps["unet"].register_forward_pre_hook(lambda m, args: unet_batches.append(args[0].shape[0]))
    h2 = comps["vae"].decoder.register_forward_pre_hook(lambda m, args: decodes.append(args[0].shape[0]))
    try:
        events = []
        engine.run(txt2img(tiny_dir, **{"latent.batch_size": 3, "noise.seed": 9}), on_event=events.append)
    finally:
        h1.remove()
        h2.remove()
    assert unet_batches == [6, 6, 6]  # 3 steps, one U-Net call each: 3 images x (uncond, cond)
    assert decodes == [3]              # one decode of the whole batch, none per step
    previews = [e.preview for e in events if isinstance(e, ev.NodeProgress)]
    assert len(previews) == 3 and all(isinstance(p, Image.Image) for p in previews)


def test_inductor_compiled_images_are_close_to_eager(tiny_dir, tmp_path, monkeypatch):
    """The real compiler (C++ code generation): images within 40 dB PSNR of eager."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # no stale shared cache
    backend, note = speed.compile_backend("inductor")
    if backend is None:
        pytest.skip(note)
    eager = image(Engine(catalog, output_dir=tmp_path / "a", env=Runtime("cpu"), previews=False),
                  txt2img(tiny_dir))[0].astype(np.float64)
    env = Runtime("cpu", compile=True)
    engine = Engine(catalog, output_dir=tmp_path / "b", env=env, previews=False)
    got = image(engine, txt2img(tiny_dir))[0].astype(np.float64)
    mse = np.mean((got - eager) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 40
