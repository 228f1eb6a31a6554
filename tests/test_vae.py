"""LoadVAE: a VAE file of its own replaces the checkpoint's, as diffusers' pipeline(vae=...) does."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import diffusers
from latentloom.app.engine.executor import NodeError
from tests.conftest import load_workflow
from tests.support.original_layout import _convert, _vae_attention_to_conv, _vae_modules
from tests.tiny import tiny_components

PROMPT, NEGATIVE, SEED = "a barn", "blurry", 3


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory):
    """Another tiny VAE (other weights) as a diffusers folder and as a vae-ft-mse-style single file."""
    vae = tiny_components(seed=7)["vae"]
    base = tmp_path_factory.mktemp("vae")
    vae.save_pretrained(base / "other-vae")
    state = _convert(vae.state_dict(), _vae_modules(vae), "")
    _vae_attention_to_conv(state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(base / "other-vae.safetensors"))
    return base / "other-vae", base / "other-vae.safetensors"


@pytest.fixture(autouse=True)
def tiny_vae_config(other_vae, monkeypatch):
    from latentloom.app.sd import vae_files
    monkeypatch.setattr(vae_files, "CONFIG_DIR", other_vae[0])  # single files load with the tiny config


def with_vae(path, tiny_dir):
    wf = load_workflow("txt2img.json", **{"ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": PROMPT,
                                          "negative.text": NEGATIVE, "noise.seed": SEED, "sampler.steps": 3,
                                          "latent.width": 64, "latent.height": 64})
    if path is not None:
        from latentloom.app.core.workflow import Node
        wf.nodes["vae"] = Node("LoadVAE", {"path": str(path), "dtype": "fp32"})
        wf.nodes["decode"].inputs["vae"] = ("vae", "vae")
    return wf


def test_loaded_vae_matches_the_pipeline_with_that_vae(engine, tiny_dir, other_vae):
    folder, single = other_vae
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        tiny_dir, vae=diffusers.AutoencoderKL.from_pretrained(folder), safety_checker=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    expected = np.array(pipe(PROMPT, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=3,
                             generator=torch.Generator().manual_seed(SEED)).images[0])
    own = np.array(Image.open(engine.run(with_vae(None, tiny_dir)).outputs[0]))
    for path in (folder, single):
        got = np.array(Image.open(engine.run(with_vae(path, tiny_dir)).outputs[0]))
        assert np.array_equal(got, expected)
    assert not np.array_equal(own, expected)


def test_single_file_equals_the_folder(runtime, other_vae):
    folder, single = other_vae
    a, b = runtime.load_vae("f", folder, "fp32"), runtime.load_vae("s", single, "fp32")
    with runtime.vae(a) as va, runtime.vae(b) as vb:
        sa, sb = va.state_dict(), vb.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with runtime.vae(runtime.load_vae("f", folder, "fp32")) as again:
        assert again is va


def test_a_file_that_is_no_vae_is_a_clear_error(engine, tiny_dir, tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "notavae.safetensors"))
    with pytest.raises(NodeError) as info:
        engine.run(with_vae(tmp_path / "notavae.safetensors", tiny_dir))
    assert str(info.value) == ("node 'vae' (LoadVAE) failed: param 'path': notavae.safetensors is not an SD 1.x VAE "
                               "(no decoder.conv_in.weight)")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(NodeError, match=r"folder is not an SD 1.x VAE \(no AutoencoderKL config.json"):
        engine.run(with_vae(tmp_path / "folder", tiny_dir))
