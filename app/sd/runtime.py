"""What node functions reach through ctx.env: the device and typed access to loaded models.

Nodes name models by handle and borrow modules in `with` blocks; the store's dicts, its locks
and the LoRA activation protocol stay behind this API:

    with ctx.env.unet(model) as unet: ...          # the U-Net with model.loras active
    with ctx.env.clip(clip) as te: te.encoder, te.tokenizer
    with ctx.env.vae(vae) as vae: ...
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.sd.device import pick_device, pick_dtype
from app.sd.models import ModelStore


@dataclass(frozen=True)
class TextModules:
    encoder: Any
    tokenizer: Any


class Runtime:
    def __init__(self, device="auto", allow_pickle=False, max_models=2):
        self.device = pick_device(device)
        self.store = ModelStore(self.device, allow_pickle=allow_pickle, max_models=max_models)

    def vram_budget(self, fraction):
        """fraction of the GPU's memory in bytes, or None on the CPU."""
        import torch
        if str(self.device).startswith("cuda"):
            return int(torch.cuda.get_device_properties(self.device).total_memory * fraction)
        return None

    # -- loading -------------------------------------------------------------------------
    def load_checkpoint(self, identity, source, config="", dtype="auto"):
        """Load a checkpoint once per process; returns the (model, clip, vae) handles."""
        from app.sd.handles import ClipHandle, ModelHandle, VaeHandle
        key = self.store.load(identity, source, config, pick_dtype(dtype, self.device))
        return ModelHandle(key), ClipHandle(key), VaeHandle(key)

    def add_lora(self, model, clip, path, identity, strength_model, strength_clip):
        """Inject a LoRA file into the handles' modules (once) and return handles with it stacked."""
        from dataclasses import replace
        from app.sd import lora
        from app.sd.handles import LoraRef
        lora.prepare(self, model.checkpoint, clip.checkpoint, path, identity)
        return (replace(model, loras=model.loras + (LoraRef(path, identity, float(strength_model)),)),
                replace(clip, loras=clip.loras + (LoraRef(path, identity, float(strength_clip)),)))

    def load_controlnet(self, identity, path, dtype="auto"):
        """Read a ControlNet file or folder once per process; returns its ControlNetHandle."""
        from app.sd import controlnet
        from app.sd.handles import ControlNetHandle
        dt = pick_dtype(dtype, self.device)
        key = f"controlnet|{identity}|{dt}|{self.device}"
        self.store.extra(key, lambda: controlnet.read(path, dt))
        return ControlNetHandle(key)

    def load_vae(self, identity, path, dtype="auto"):
        """Read a VAE file or folder once per process; returns a VaeHandle usable wherever a checkpoint's is."""
        from app.sd import vae_files
        from app.sd.handles import VaeHandle
        dt = pick_dtype(dtype, self.device)
        key = f"vae|{identity}|{dt}|{self.device}"
        self.store.extra(key, lambda: vae_files.read(path, dt))
        return VaeHandle("", key)

    # -- borrowing modules -----------------------------------------------------------------
    @contextmanager
    def unet(self, model):
        """The U-Net of a ModelHandle with exactly its LoRA stack active, under the checkpoint's lock."""
        from app.sd.lora import activated
        comps = self.store.get(model.checkpoint)
        with activated(self, comps, model.loras, "unet"):
            yield comps["unet"]

    @contextmanager
    def clip(self, clip):
        """TextModules(encoder, tokenizer) of a ClipHandle with its LoRA stack active."""
        from app.sd.lora import activated
        comps = self.store.get(clip.checkpoint)
        with activated(self, comps, clip.loras, "text_encoder"):
            yield TextModules(comps["text_encoder"], comps["tokenizer"])

    @contextmanager
    def vae(self, vae):
        """The autoencoder of a VaeHandle (a checkpoint's, or one LoadVAE read)."""
        if vae.file:
            entry = self.store.extra(vae.file)
            with entry["lock"]:
                yield entry["module"]
            return
        comps = self.store.get(vae.checkpoint)
        with comps["lock"]:
            yield comps["vae"]

    @contextmanager
    def controlnet(self, handle):
        """The ControlNetModel of a ControlNetHandle (read-only, shared)."""
        entry = self.store.extra(handle.key)
        with entry["lock"]:
            yield entry["module"]

    def checkpoint_source(self, handle):
        """The folder, file or hub id a handle's checkpoint was loaded from."""
        return self.store.source(handle.checkpoint)

    def scheduler_config(self, model):
        """The checkpoint's scheduler config (a copy)."""
        return dict(self.store.get(model.checkpoint)["scheduler_config"])
