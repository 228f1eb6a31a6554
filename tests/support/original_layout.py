"""Write diffusers SD 1.x components as one checkpoint in the original CompVis/LDM layout.

This is the inverse of what diffusers' single-file loader does for SD 1.x
(`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`),
so tests can exercise `from_single_file` without downloading a real model.
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

# Renames inside one module (diffusers name -> LDM name).
UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
               "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _layers_per_block(config):
    n = config["layers_per_block"]
    if not isinstance(n, int):  # the loader only understands a single int
        if len(set(n)) != 1:
            raise ValueError("per-block layers_per_block has no LDM layout")
        n = n[0]
    return n


def _unet_modules(unet):
    """Map each diffusers module path of the U-Net to (LDM path, renames)."""
    config = unet.config
    n = _layers_per_block(config)
    out = {"time_embedding.linear_1": ("time_embed.0", {}), "time_embedding.linear_2": ("time_embed.2", {}),
           "conv_in": ("input_blocks.0.0", {}), "conv_norm_out": ("out.0", {}), "conv_out": ("out.2", {}),
           "mid_block.resnets.0": ("middle_block.0", UNET_RESNET),
           "mid_block.attentions.0": ("middle_block.1", {}),
           "mid_block.resnets.1": ("middle_block.2", UNET_RESNET)}
    # input_blocks.0 is conv_in; each down block then holds n (resnet, attention) slots and one downsampler.
    for b in range(len(config["down_block_types"])):
        first = 1 + b * (n + 1)
        for j in range(n):
            out[f"down_blocks.{b}.resnets.{j}"] = (f"input_blocks.{first + j}.0", UNET_RESNET)
            out[f"down_blocks.{b}.attentions.{j}"] = (f"input_blocks.{first + j}.1", {})
        out[f"down_blocks.{b}.downsamplers.0.conv"] = (f"input_blocks.{first + n}.0.op", {})
    # Each up block holds n + 1 slots; its upsampler follows the attention (if any) of the last slot.
    for b, block in enumerate(unet.up_blocks):
        first = b * (n + 1)
        for j in range(n + 1):
            out[f"up_blocks.{b}.resnets.{j}"] = (f"output_blocks.{first + j}.0", UNET_RESNET)
            out[f"up_blocks.{b}.attentions.{j}"] = (f"output_blocks.{first + j}.1", {})
        slot = 2 if getattr(block, "attentions", None) else 1
        out[f"up_blocks.{b}.upsamplers.0.conv"] = (f"output_blocks.{first + n}.{slot}.conv", {})
    return out


def _vae_modules(vae):
    config = vae.config
    n = _layers_per_block(config)
    blocks = len(config["down_block_types"])
    out = {name: (name, {}) for name in ("quant_conv", "post_quant_conv")}
    for part in ("encoder", "decoder"):
        for name in ("conv_in", "conv_out"):
            out[f"{part}.{name}"] = (f"{part}.{name}", {})
        out[f"{part}.conv_norm_out"] = (f"{part}.norm_out", {})
        out[f"{part}.mid_block.attentions.0"] = (f"{part}.mid.attn_1", VAE_ATTENTION)
        for j in range(2):
            out[f"{part}.mid_block.resnets.{j}"] = (f"{part}.mid.block_{j + 1}", VAE_RESNET)
    for b in range(blocks):
        for j in range(n):
            out[f"encoder.down_blocks.{b}.resnets.{j}"] = (f"encoder.down.{b}.block.{j}", VAE_RESNET)
        out[f"encoder.down_blocks.{b}.downsamplers.0.conv"] = (f"encoder.down.{b}.downsample.conv", {})
        # The LDM decoder counts its up blocks from the lowest resolution upwards: reversed.
        up = blocks - 1 - b
        for j in range(n + 1):
            out[f"decoder.up_blocks.{b}.resnets.{j}"] = (f"decoder.up.{up}.block.{j}", VAE_RESNET)
        out[f"decoder.up_blocks.{b}.upsamplers.0.conv"] = (f"decoder.up.{up}.upsample.conv", {})
    return out


def _convert(state_dict, modules, prefix):
    result = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            path = ".".join(parts[:cut])
            if path in modules:
                break
        else:
            raise KeyError(f"no LDM name for {key}")
        new_path, renames = modules[path]
        rest = ".".join(parts[cut:])
        for old, new in renames.items():
            if rest.startswith(old + "."):
                rest = new + rest[len(old):]
                break
        result[f"{prefix}{new_path}.{rest}"] = value
    return result


def _vae_attention_to_conv(result):
    # LDM's VAE mid attention uses 1x1 convs; diffusers stores them as linear layers.
    for key, value in result.items():
        if ".mid.attn_1." in key and key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            result[key] = value[:, :, None, None]


def to_original_state_dict(unet, vae, text_encoder, position_ids=True):
    """Return an LDM-layout state dict (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.*`).

    `position_ids` adds the CLIP position-id buffer that real SD 1.x files carry (the loader ignores it).
    """
    result = _convert(unet.state_dict(), _unet_modules(unet), UNET_PREFIX)
    vae_part = _convert(vae.state_dict(), _vae_modules(vae), VAE_PREFIX)
    _vae_attention_to_conv(vae_part)
    result.update(vae_part)
    for key, value in text_encoder.state_dict().items():
        # transformers >= 5 dropped the `text_model.` level; the original file always has it.
        if not key.startswith("text_model."):
            key = "text_model." + key
        result[CLIP_PREFIX + key] = value
    if position_ids:
        count = text_encoder.config.max_position_embeddings
        result[CLIP_PREFIX + "text_model.embeddings.position_ids"] = torch.arange(count)[None]
    return result


def save_original_checkpoint(components_or_pipe, path):
    """Write a pipeline (or a dict with unet/vae/text_encoder) as one LDM-layout .safetensors file."""
    c = components_or_pipe
    parts = [c[name] if isinstance(c, dict) else getattr(c, name) for name in ("unet", "vae", "text_encoder")]
    state = {k: v.detach().contiguous().cpu() for k, v in to_original_state_dict(*parts).items()}
    save_file(state, str(path))
    return Path(path)


def write_config_dir(pipe, path):
    """Save a weightless diffusers folder (model_index.json and every component's config) for `config=`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_config(path)  # model_index.json
    for name, component in pipe.components.items():
        if component is None:
            continue
        target = path / name
        if hasattr(component, "save_vocabulary"):  # tokenizer: its own files are the config
            component.save_pretrained(target)
        elif hasattr(component, "save_config"):  # diffusers model or scheduler
            component.save_config(target)
        elif hasattr(component, "config") and hasattr(component.config, "save_pretrained"):
            component.config.save_pretrained(target)  # transformers model: config.json only
    return path
