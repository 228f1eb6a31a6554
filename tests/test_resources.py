"""Offline checks of the shipped SD 1.5 config folders and CLIP tokenizer (CPU, no network)."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
CONFIG_DIRS = [RESOURCES / "sd15", RESOURCES / "sd15-inpainting"]
TOKENIZER_DIR = RESOURCES / "sd15" / "tokenizer"
TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]
WHEEL = Path("/opt/pypi/files/open_clip_torch-3.3.0-py3-none-any.whl")
CONVERTER = ROOT / "tests" / "support" / "original_layout.py"

# Exact parameter counts (known SD 1.5 sizes: 859.52M / 83.65M / 123.06M).
# The inpainting UNet's conv_in has 5 extra input channels: 5 * 320 * 3 * 3 = 14400 more.
PARAMS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd15-inpainting": {"unet": 859_535_364, "vae": 83_653_863, "text_encoder": 123_060_480},
}


def _load_module(name, path):
    """Import a file by path (tools/ and tests/support/ are not packages)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_ids():
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), local_files_only=True)
    assert len(tok) == 49408
    assert tok.model_max_length == 77
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (49406, 49407, 49407)
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    # Lower-casing and byte-level fallback (ids checked against OpenAI's simple_tokenizer).
    assert tok("A Photo OF a CAT!!").input_ids == [49406, 320, 1125, 539, 320, 2368, 748, 49407]
    assert tok("naïve café — 日本 😀").input_ids == [
        49406, 1097, 35689, 563, 15304, 2005, 39121, 19277, 361, 7334, 49407,
    ]


def test_inpainting_tokenizer_is_identical_copy():
    for name in TOKENIZER_FILES:
        a = (TOKENIZER_DIR / name).read_bytes()
        assert a == (RESOURCES / "sd15-inpainting" / "tokenizer" / name).read_bytes(), name


def test_build_script_is_deterministic(tmp_path):
    if not WHEEL.exists():
        pytest.skip(f"open_clip wheel not found at {WHEEL}")
    builder = _load_module("build_clip_tokenizer", ROOT / "tools" / "build_clip_tokenizer.py")
    out = builder.build(WHEEL, tmp_path / "tok")
    for name in TOKENIZER_FILES:
        assert (out / name).read_bytes() == (TOKENIZER_DIR / name).read_bytes(), name


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("config_dir", CONFIG_DIRS, ids=lambda p: p.name)
def test_components_instantiate_on_meta(config_dir):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    index = json.loads((config_dir / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]

    with init_empty_weights():  # no memory is allocated for the weights
        models = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config_dir / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config_dir / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config_dir / "text_encoder")),
        }
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    print(config_dir.name, counts)
    assert all(p.is_meta for m in models.values() for p in m.parameters())
    assert counts == PARAMS[config_dir.name]

    sched = PNDMScheduler.from_pretrained(config_dir / "scheduler")
    assert sched.config.skip_prk_steps and sched.config.steps_offset == 1
    assert (sched.config.beta_start, sched.config.beta_end) == (0.00085, 0.012)


# --------------------------------------------------------------------------- from_single_file

# Same topology as SD 1.5 (block types, layers per block) so an original-layout
# converter with the usual hard-coded block map still applies; only widths shrink.
TINY = {
    "unet/config.json": {"block_out_channels": [32, 32, 64, 64], "cross_attention_dim": 32},
    "vae/config.json": {"block_out_channels": [32, 32, 32, 32], "sample_size": 64},
    "text_encoder/config.json": {
        "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
        "num_attention_heads": 4, "projection_dim": 32,
    },
}


def make_tiny_config_dir(src, dst):
    """Copy a config folder and shrink the model configs."""
    shutil.copytree(src, dst)
    for rel, changes in TINY.items():
        cfg = json.loads((dst / rel).read_text())
        cfg.update(changes)
        (dst / rel).write_text(json.dumps(cfg, indent=2))
    return dst


def check_single_file_roundtrip(save_original_checkpoint, tmp_path, name="sd15"):
    """tiny diffusers pipeline -> original-layout file -> from_single_file(config=folder)."""
    import diffusers
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    cfg_dir = make_tiny_config_dir(RESOURCES / name, tmp_path / f"tiny-{name}")
    torch.manual_seed(0)
    pipeline_cls = getattr(diffusers, json.loads((cfg_dir / "model_index.json").read_text())["_class_name"])
    pipe = pipeline_cls(
        unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg_dir / "unet")),
        vae=AutoencoderKL.from_config(AutoencoderKL.load_config(cfg_dir / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(cfg_dir / "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(cfg_dir / "tokenizer"),
        scheduler=PNDMScheduler.from_pretrained(cfg_dir / "scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    ckpt = tmp_path / f"tiny-{name}.safetensors"
    save_original_checkpoint(pipe, ckpt)

    loaded = pipeline_cls.from_single_file(str(ckpt), config=str(cfg_dir), local_files_only=True)
    assert loaded.unet.config.in_channels == pipe.unet.config.in_channels
    assert len(loaded.tokenizer) == 49408 and isinstance(loaded.scheduler, PNDMScheduler)
    for comp in ("unet", "vae", "text_encoder"):
        want, got = getattr(pipe, comp).state_dict(), getattr(loaded, comp).state_dict()
        assert want.keys() == got.keys(), comp
        for k in want:
            assert torch.equal(want[k], got[k].to(want[k].dtype)), f"{comp}: {k}"


@pytest.mark.parametrize("name", ["sd15", "sd15-inpainting"])
def test_from_single_file_offline(tmp_path, name):
    if not CONVERTER.exists():
        pytest.skip("tests/support/original_layout.py (diffusers->original converter) is not in the repo yet")
    converter = _load_module("original_layout", CONVERTER)
    check_single_file_roundtrip(converter.save_original_checkpoint, tmp_path, name)
