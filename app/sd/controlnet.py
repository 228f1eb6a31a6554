"""ControlNets: reading SD 1.5 files, and the guide that adds their residuals to the U-Net.

Files: diffusers folders (config.json + weights), single .safetensors files in the original
layout (`control_v11p_sd15_*`: `control_model.*` or bare keys; the old full-weight
`control_sd15_*` files, which also carry a whole SD model) or diffusers-named single files.
The per-step call is StableDiffusionControlNetPipeline's, so results match it pixel for pixel.
"""
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentloom.app.core.errors import UserError
from latentloom.app.paths import RESOURCES
from latentloom.app.sd import guidance
from latentloom.app.sd.safetensors_header import read_header

CONFIG_DIR = RESOURCES / "controlnet-sd15"  # the SD 1.5 ControlNet config (offline single-file loads)
FIT = ("in_channels", "cross_attention_dim", "block_out_channels", "conditioning_channels")
HINT = "input_hint_block.0.weight"
ATTN_K = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
DIFFUSERS_ATTN_K = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"


def reference():
    return json.loads((Path(CONFIG_DIR) / "config.json").read_text())


def _bad(name, why):
    return UserError(f"param 'path': {name} is not an SD 1.5 ControlNet ({why})")


def _check_single_file(path):
    """Refuse, from the header alone, files that are not SD 1.5 ControlNets."""
    header = read_header(path, lambda why: _bad(path.name, why))
    ref = reference()
    if "difference" in header:
        raise _bad(path.name, "a difference ControlNet: its weights are offsets from a base model's "
                              "(DiffControlNetLoader); use the full ControlNet file")
    if "controlnet_cond_embedding.conv_in.weight" in header:
        found = header.get(DIFFUSERS_ATTN_K)
    else:
        prefix = "control_model." if "control_model." + HINT in header else ""
        if prefix + HINT not in header:
            raise _bad(path.name, "no ControlNet hint block; T2I adapters and control-LoRAs are not supported")
        found = header.get(prefix + ATTN_K)
    width = found["shape"][1] if found else None
    if width != ref["cross_attention_dim"]:
        raise _bad(path.name, f"its cross-attention width is {width}, SD 1.5 has {ref['cross_attention_dim']}; "
                              "it is for another base model")


def _check_config(name, config):
    ref = reference()
    if config.get("_class_name") != "ControlNetModel":
        raise _bad(name, f"its config.json describes a {config.get('_class_name')}")
    for key in FIT:
        have, want = config.get(key, ref[key]), ref[key]
        if (list(have) if isinstance(have, (list, tuple)) else have) != want:
            raise _bad(name, f"{key} is {have}, SD 1.5 has {want}")


def read(path, dtype):
    """A ControlNetModel from a diffusers folder or a single .safetensors file."""
    from diffusers import ControlNetModel
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    path = Path(path)
    if path.is_dir():
        config = path / "config.json"
        if not config.exists():
            raise _bad(path.name, "a folder without config.json")
        _check_config(path.name, json.loads(config.read_text()))
        load = lambda: ControlNetModel.from_pretrained(path, torch_dtype=dtype, local_files_only=True)  # noqa: E731
    else:
        if path.suffix.lower() != ".safetensors":
            raise UserError(f"param 'path': {path.name}: unsupported ControlNet file type (use .safetensors "
                            "or a diffusers folder; .pth files can run code when loaded)")
        _check_single_file(path)
        load = lambda: ControlNetModel.from_single_file(  # noqa: E731
            str(path), config=str(CONFIG_DIR), local_files_only=True, torch_dtype=dtype)
    try:
        model = load()
    except Exception as e:
        raise _bad(path.name, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}") from e
    return model.eval().requires_grad_(False)


# -- the guide -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ControlSpec:
    """What ApplyControlNet attaches to a conditioning (compared by identity)."""
    controlnet: Any      # ControlNetHandle
    image: Any           # IMAGE [b, 3, H, W] in 0..1
    strength: float
    start: float
    end: float
    mask: Any = None     # MASK [b, 1, H, W] or None: where the control applies
    kind: str = "controlnet"


def keep(step, total, start, end):
    """diffusers' controlnet_keep for one step: 1.0 inside [start, end] of the steps, else 0.0."""
    return 1.0 - float(step / total < start or (step + 1) / total > end)


def control_image(image, height, width, batch, do_cfg, device, dtype):
    """The pipelines' prepare_image: resized by the control image processor, batched, doubled for CFG."""
    from diffusers.image_processor import VaeImageProcessor
    proc = VaeImageProcessor(vae_scale_factor=8, do_convert_rgb=True, do_normalize=False)
    image = proc.preprocess(image, height=height, width=width).to(dtype=torch.float32)
    image = image.repeat_interleave(batch if image.shape[0] == 1 else 1, dim=0)
    image = image.to(device=device, dtype=dtype)
    return torch.cat([image] * 2) if do_cfg else image


def pooled(net):
    """Shuffle-type ControlNets (global_pool_conditions) run in diffusers' guess mode."""
    return bool(net.config.get("global_pool_conditions", False))


class ControlGuide(guidance.Guide):
    def __init__(self, net, spec, image, mask, do_cfg):
        self.net, self.spec, self.image, self.mask = net, spec, image, mask
        self.cond_only = pooled(net) and do_cfg  # guess mode: the conditional half only, as diffusers

    def unet_kwargs(self, at, t, model_in, embeds):
        scale = self.spec.strength * keep(at.step, at.total, self.spec.start, self.spec.end)
        sample = model_in[:, :self.net.config.in_channels].contiguous()  # 9-channel U-Nets: the latents only
        if self.cond_only:
            half = sample.shape[0] // 2
            sample, embeds = sample[half:], embeds[half:]
        dtype = self.net.dtype
        down, mid = self.net(sample.to(dtype), t, encoder_hidden_states=embeds.to(dtype),
                             controlnet_cond=self.image, conditioning_scale=scale, guess_mode=pooled(self.net),
                             return_dict=False)
        if self.cond_only:  # nothing for the unconditional half
            down = [torch.cat([torch.zeros_like(d), d]) for d in down]
            mid = torch.cat([torch.zeros_like(mid), mid])
        return residual_kwargs(down, mid, self.mask, model_in.dtype)


def masked(residual, mask):
    """A residual limited to where the control mask (at latent size) is white."""
    if mask is None:
        return residual
    if mask.shape[0] != residual.shape[0]:  # one mask for both halves of the CFG batch
        mask = mask.repeat(residual.shape[0] // mask.shape[0], 1, 1, 1)
    m = torch.nn.functional.interpolate(mask, size=residual.shape[-2:], mode="bilinear")
    return residual * m.to(residual.dtype)


def residual_kwargs(down, mid, mask, dtype):
    """The U-Net kwargs that add a ControlNet's residuals."""
    return {"down_block_additional_residuals": tuple(masked(d, mask).to(dtype) for d in down),
            "mid_block_additional_residual": masked(mid, mask).to(dtype)}


def latent_mask(mask, h, w, batch, device):
    """ApplyControlNet's mask at latent size, one per latent in the batch."""
    if mask is None:
        return None
    mask = torch.nn.functional.interpolate(mask.float(), size=(h, w), mode="bilinear")
    return mask.repeat_interleave(batch if mask.shape[0] == 1 else 1, dim=0).to(device)


def check_fits(net, unet_config):
    """Refuse a ControlNet whose residuals cannot add to this U-Net's."""
    def listed(v):
        return list(v) if isinstance(v, (list, tuple)) else [v]
    for key in ("block_out_channels", "cross_attention_dim"):
        have, want = net.config.get(key), (unet_config or {}).get(key, net.config.get(key))
        if listed(have) != listed(want):
            raise UserError(f"the ControlNet does not fit this model: its {key} is {have}, the U-Net's is {want}")


@contextmanager
def make(env, spec, context):
    """guidance.MAKERS["controlnet"]: bind a ControlSpec to this sampler run."""
    if context.get("sampling") == "comfyui":
        from latentloom.app.sd.comfy import control
        with control.make(env, spec, context) as guide:
            yield guide
        return
    latent, cfg = context["latent"], context["cfg"]
    batch, _, h, w = latent.samples.shape
    height, width = h * 8, w * 8
    if tuple(spec.image.shape[-2:]) != (height, width) and context.get("log"):
        context["log"](f"control image {spec.image.shape[-1]}x{spec.image.shape[-2]} resized to "
                       f"{width}x{height}")
    with env.controlnet(spec.controlnet) as net:
        check_fits(net, context.get("unet_config"))
        device, dtype = net.device, net.dtype
        image = control_image(spec.image, height, width, batch, cfg > 1.0 and not pooled(net), device, dtype)
        yield ControlGuide(net, spec, image, latent_mask(spec.mask, h, w, batch, device), cfg > 1.0)


guidance.MAKERS["controlnet"] = make
