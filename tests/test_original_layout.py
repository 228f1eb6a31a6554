"""A tiny SD 1.x model written in the original LDM single-file layout loads back exactly."""
import socket
import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support.original_layout import save_original_checkpoint, to_original_state_dict, write_config_dir  # noqa: E402
from tiny import tiny_pipeline  # noqa: E402

PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def assert_same(a, b):
    a, b = a.state_dict(), b.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(params=[4, 9], ids=["txt2img", "inpaint"])
def saved(request, tmp_path):
    pipe = tiny_pipeline(in_channels=request.param)
    path = save_original_checkpoint(pipe, tmp_path / "model.safetensors")
    config = write_config_dir(pipe, tmp_path / "config")
    return pipe, path, config


def test_file_has_only_original_keys(saved):
    pipe, path, config = saved
    state = load_file(str(path))
    keys = state.keys()
    assert all(k.startswith(PREFIXES) for k in keys)
    assert state["model.diffusion_model.input_blocks.0.0.weight"].shape[1] == pipe.unet.config.in_channels
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4  # 1x1 conv, as in LDM
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys
    assert not list(config.rglob("*.safetensors")) and not list(config.rglob("*.bin"))


def test_pipeline_round_trip(saved):
    pipe, path, config = saved
    loaded = StableDiffusionPipeline.from_single_file(
        str(path), config=str(config), local_files_only=True, safety_checker=None)
    for name in ("unet", "vae", "text_encoder"):
        assert_same(getattr(pipe, name), getattr(loaded, name))
    assert loaded.unet.config.in_channels == pipe.unet.config.in_channels


def test_model_round_trip(saved):
    pipe, path, config = saved
    unet = UNet2DConditionModel.from_single_file(str(path), config=str(config), subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_single_file(str(path), config=str(config), subfolder="vae", local_files_only=True)
    assert_same(pipe.unet, unet)
    assert_same(pipe.vae, vae)


def test_sd_shaped_names(tmp_path):
    """Real SD 1.x block structure (2 layers per block, 4 levels) with tiny widths."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, layers_per_block=2, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=32)  # default block types are the SD 1.x ones
    vae = AutoencoderKL(layers_per_block=2, block_out_channels=(8, 16, 32, 32), norm_num_groups=8,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=100, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    keys = to_original_state_dict(unet, vae, text).keys()
    for name in ("input_blocks.11.0.in_layers.0.weight", "input_blocks.3.0.op.weight", "input_blocks.9.0.op.weight",
                 "input_blocks.7.1.proj_in.weight", "middle_block.2.out_layers.3.weight",
                 "output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight", "output_blocks.8.2.conv.weight",
                 "output_blocks.11.0.skip_connection.weight", "output_blocks.11.1.proj_out.weight"):
        assert "model.diffusion_model." + name in keys, name
    for name in ("encoder.down.3.block.1.conv2.weight", "encoder.down.2.downsample.conv.weight",
                 "decoder.up.0.block.2.conv1.weight", "decoder.up.3.upsample.conv.weight",
                 "decoder.up.1.block.0.nin_shortcut.weight", "decoder.mid.attn_1.proj_out.weight"):
        assert "first_stage_model." + name in keys, name
    assert not any(".downsample." in k for k in keys if "down.3." in k)
    assert not any(".upsample." in k for k in keys if "decoder.up.0." in k)
    # And it loads back exactly.
    config = tmp_path / "config"
    unet.save_config(config / "unet")
    vae.save_config(config / "vae")
    path = save_original_checkpoint(dict(unet=unet, vae=vae, text_encoder=text), tmp_path / "sd.safetensors")
    assert_same(unet, UNet2DConditionModel.from_single_file(str(path), config=str(config), subfolder="unet"))
    assert_same(vae, AutoencoderKL.from_single_file(str(path), config=str(config), subfolder="vae"))
