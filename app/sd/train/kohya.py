"""The trained LoRA in the kohya/A1111 layout: lora_unet_* / lora_te_* keys with .alpha, ss_* metadata."""
import hashlib
import json
import os
import struct
from pathlib import Path

import torch

PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te_"}
_hashes = {}  # (path, size, mtime) -> (sha256, legacy hash)


def kohya_state(parts, alpha):
    """{"unet": peft state dict, "text_encoder": ...} -> one kohya state dict (fp32, contiguous).

    peft keys `<module>.lora_A.weight` become `<prefix><module with _>.lora_down.weight`; the text
    encoder's modules take kohya's `text_model_` (transformers 5 leaves it out of the names)."""
    out = {}
    for part, state in parts.items():
        for key in sorted(state):
            module, kind = key.rsplit(".lora_", 1)
            if part == "text_encoder" and not module.startswith("text_model."):
                module = "text_model." + module
            name = PREFIX[part] + module.replace(".", "_")
            down_up = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}[kind]
            out[f"{name}.{down_up}"] = state[key].detach().float().cpu().contiguous()
            if down_up == "lora_down.weight":
                out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def metadata(config, dataset, steps, base_name, base_hashes):
    """kohya's ss_* fields (strings). No time stamps, so equal runs write equal files."""
    sha, legacy = base_hashes
    tags = {}
    for caption, count in dataset.summary().items():
        for tag in (t.strip() for t in caption.split(",")):
            if tag:
                tags[tag] = tags.get(tag, 0) + count
    folder = Path(dataset.folder).name
    fields = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": config.rank,
        "ss_network_alpha": config.alpha,
        "ss_network_args": {"target_modules": "to_q,to_k,to_v,to_out.0",
                            "text_encoder": str(config.text_encoder)},
        "ss_network_train_unet_only": not config.text_encoder,
        "ss_base_model_version": "sd_v1",
        "ss_v2": False,
        "ss_sd_model_name": base_name,
        "ss_new_sd_model_hash": sha,
        "ss_sd_model_hash": legacy,
        "ss_steps": steps,
        "ss_max_train_steps": config.steps,
        "ss_learning_rate": config.lr,
        "ss_unet_lr": config.lr,
        "ss_text_encoder_lr": config.lr if config.text_encoder else 0,
        "ss_optimizer": "torch.optim.AdamW(weight_decay=0.01,betas=(0.9,0.999),eps=1e-08)",
        "ss_lr_scheduler": "constant",
        "ss_max_grad_norm": 1.0,
        "ss_batch_size_per_device": config.batch,
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_seed": config.seed,
        "ss_mixed_precision": config.precision,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_prediction_type": config.prediction_type,
        "ss_num_train_images": len(dataset.names),
        "ss_dataset_dirs": {folder: {"n_repeats": 1, "img_count": len(dataset.names)}},
        "ss_tag_frequency": {folder: tags},
        "ss_caption_summary": dataset.summary(),
        "ss_training_comment": "trained with Latent Loom (diffusers train_text_to_image_lora recipe)",
    }
    return {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in fields.items()}


def base_hashes(source):
    """(sha256 of the checkpoint file, A1111's legacy 8-hex hash); a folder hashes its weight files
    in order, a hub id is named as it is."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin"))
        h = hashlib.sha256()
        for p in files:
            h.update(_file_hashes(p)[0].encode())
        return h.hexdigest(), ""
    if path.is_file():
        return _file_hashes(path)
    return f"hub:{source}", ""


def _file_hashes(path):
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            f.seek(0x100000)
            legacy = hashlib.sha256(f.read(0x10000)).hexdigest()[:8]
        _hashes[key] = (h.hexdigest(), legacy)
    return _hashes[key]


def save(path, state, meta):
    """Write the file crash-safely (temp name, fsync, rename)."""
    from latentloom.app.engine.outputs import write_file
    data = serialize(state, meta)
    write_file(path, lambda tmp: Path(tmp).write_bytes(data))


def serialize(tensors, meta):
    """safetensors bytes with the header's keys sorted: safetensors writes its metadata in hash
    order, and equal runs must give equal files. Tensor offsets are unaffected."""
    from safetensors.torch import save
    blob = save(tensors, metadata=meta)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.dumps(json.loads(blob[8:8 + n]), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + blob[8 + n:]
