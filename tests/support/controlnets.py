"""Tiny random ControlNets for tests, and a way to splice ApplyControlNet into a workflow.

A fresh ControlNet's output convolutions are zero (it changes nothing), so they are randomised.
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.support.original_layout import _convert, _unet_modules, to_original_state_dict


def tiny_controlnet(unet, seed):
    from diffusers import ControlNetModel
    torch.manual_seed(seed)  # from_unet draws the hint encoder's weights from the global generator
    net = ControlNetModel.from_unet(unet)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]:
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net.eval()


def to_original(net, unet):
    """The ControlNet's state dict in the original layout (bare keys, as control_v11p_sd15_* files)."""
    modules = {k: v for k, v in _unet_modules(unet).items() if not k.startswith(("up_blocks", "conv_out", "conv_norm_out"))}
    cond = net.controlnet_cond_embedding
    modules["controlnet_cond_embedding.conv_in"] = ("input_hint_block.0", {})
    for i in range(len(cond.blocks)):
        modules[f"controlnet_cond_embedding.blocks.{i}"] = (f"input_hint_block.{2 * (i + 1)}", {})
    modules["controlnet_cond_embedding.conv_out"] = (f"input_hint_block.{2 * (len(cond.blocks) + 1)}", {})
    for i in range(len(net.controlnet_down_blocks)):
        modules[f"controlnet_down_blocks.{i}"] = (f"zero_convs.{i}.0", {})
    modules["controlnet_mid_block"] = ("middle_block_out.0", {})
    return _convert(net.state_dict(), modules, "")


def save_single_file(net, unet, path, full_sd=None):
    """Write an original-layout file: bare keys, or (full_sd = a pipeline) the old control_sd15_* layout
    with the whole SD model beside `control_model.*`."""
    state = to_original(net, unet)
    if full_sd is not None:
        state = {"control_model." + k: v for k, v in state.items()}
        state.update(to_original_state_dict(full_sd.unet, full_sd.vae, full_sd.text_encoder))
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return Path(path)


def add_control(doc, cn_path, image_link, name="apply", cn_name="cn", strength=1.0, start=0.0, end=1.0,
                mask_link=None):
    """Insert LoadControlNet + ApplyControlNet between the sampler and its conditionings."""
    nodes = doc["nodes"]
    if cn_name not in nodes:
        nodes[cn_name] = {"type": "LoadControlNet", "params": {"path": str(cn_path), "dtype": "fp32"}}
    sampler = nodes["sampler"]["inputs"]
    inputs = {"positive": sampler["positive"], "negative": sampler["negative"], "controlnet": [cn_name, "controlnet"],
              "image": list(image_link)}
    if mask_link:
        inputs["mask"] = list(mask_link)
    nodes[name] = {"type": "ApplyControlNet", "inputs": inputs,
                   "params": {"strength": strength, "start": start, "end": end}}
    sampler["positive"], sampler["negative"] = [name, "positive"], [name, "negative"]
    return doc

