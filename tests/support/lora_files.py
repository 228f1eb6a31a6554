"""Random LoRA files for tests: diffusers/PEFT layout and the kohya/A1111 layout.

make_peft_lora injects a peft LoraConfig into fresh copies of the given U-Net and text
encoder, fills lora_A and lora_B with seeded random values (lora_B non-zero, so the LoRA
changes the image) and saves with StableDiffusionPipeline.save_lora_weights.
peft_to_kohya rewrites such a file into kohya's `lora_unet_*` / `lora_te_*` keys.
"""
import copy
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _random_adapter(module, targets, rank, gen, scale):
    """A peft state dict (keys `<module>.lora_A.weight`) of random LoRA weights for `module`."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False)
    model = inject_adapter_in_model(config, copy.deepcopy(module))
    state = get_peft_model_state_dict(model)
    return {k: (torch.randn(v.shape, generator=gen) * scale).contiguous() for k, v in sorted(state.items())}


def _modules(model):
    """(unet, text_encoder) of a diffusers model folder, a pipeline or a dict of components."""
    if isinstance(model, (str, Path)):
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel
        return (UNet2DConditionModel.from_pretrained(model, subfolder="unet"),
                CLIPTextModel.from_pretrained(model, subfolder="text_encoder"))
    if isinstance(model, dict):
        return model.get("unet"), model.get("text_encoder")
    return model.unet, model.text_encoder


def make_peft_lora(model, path, parts=("unet", "text_encoder"), rank=4, seed=0, scale=0.3):
    """Write a random LoRA for `model`'s U-Net and/or text encoder (`parts`) as `path` (.safetensors).

    model: a diffusers model folder, a pipeline, or a dict with "unet" / "text_encoder" modules."""
    from diffusers import StableDiffusionPipeline
    unet, text_encoder = _modules(model)
    unet = unet if "unet" in parts else None
    text_encoder = text_encoder if "text_encoder" in parts else None
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    if unet is not None:
        layers["unet_lora_layers"] = _random_adapter(unet, UNET_TARGETS, rank, gen, scale)
    if text_encoder is not None:
        layers["text_encoder_lora_layers"] = _random_adapter(text_encoder, TE_TARGETS, rank, gen, scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(path.parent, weight_name=path.name, **layers)
    return path


def kohya_name(key):
    """`unet.down_blocks.0.attentions.0...to_q.lora_A.weight` -> `lora_unet_down_blocks_0_..._to_q.lora_down.weight`."""
    part, rest = key.split(".", 1)
    module, kind = rest.rsplit(".lora_", 1)  # kind: "A.weight" or "B.weight"
    if part == "unet":
        prefix = "lora_unet_"
    elif part == "text_encoder":
        prefix = "lora_te_"
        if not module.startswith("text_model."):  # transformers 5 flattens CLIPTextModel
            module = "text_model." + module
    else:
        raise ValueError(f"unexpected key {key!r}")
    down_up = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}[kind]
    return prefix + module.replace(".", "_"), down_up


def peft_to_kohya(src, dst):
    """Rewrite a diffusers/PEFT LoRA file into the kohya layout (alpha = rank, so scale 1)."""
    out = {}
    with safe_open(str(src), "pt") as f:
        for key in f.keys():
            name, kind = kohya_name(key)
            tensor = f.get_tensor(key)
            out[f"{name}.{kind}"] = tensor
            if kind == "lora_down.weight":
                out[f"{name}.alpha"] = torch.tensor(float(tensor.shape[0]))
    save_file(out, str(dst))
    return Path(dst)


def other_architecture(model):
    """{"unet", "text_encoder"} of the same layout as `model`'s but other widths (cross-attention 64,
    text hidden 64): LoRAs made for these do not fit `model`."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel
    unet, text_encoder = _modules(model)
    config = copy.deepcopy(text_encoder.config)
    config.hidden_size = config.projection_dim = 64
    return {"unet": UNet2DConditionModel.from_config({**unet.config, "cross_attention_dim": 64}),
            "text_encoder": CLIPTextModel(config)}
