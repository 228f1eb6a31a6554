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

from latentloom.app.sd import speed
from latentloom.app.sd.device import pick_device, pick_dtype
from latentloom.app.sd.models import ModelStore


@dataclass(frozen=True)
class TextModules:
    encoder: Any
    tokenizer: Any


class Runtime:
    def __init__(self, device="auto", allow_pickle=False, max_models=2, compile=False, lowvram=False):
        """compile: False, True (inductor) or a torch.compile backend name; lowvram: keep models on the
        CPU and move each to the device only while it is used (a no-op on the CPU)."""
        self.device = pick_device(device)
        self.compile = "inductor" if compile is True else (compile or None)
        self.lowvram = bool(lowvram) and self.device != "cpu"
        self.notes = []  # once per runtime: the compile fallback, --lowvram on the CPU
        if lowvram and self.device == "cpu":
            self.notes.append("--lowvram: nothing to offload on the CPU (models stay in RAM)")
        self.backend = None
        if self.compile:
            self.backend, note = speed.compile_backend(self.compile)
            if note:
                self.notes.append(note)
        self.store = ModelStore("cpu" if self.lowvram else self.device, allow_pickle=allow_pickle,
                                max_models=max_models)
        self.offload = None
        if self.lowvram:
            from latentloom.app.sd.offload import Offload
            self.offload = Offload(self.device)

    def vram_budget(self, fraction):
        """fraction of the GPU's memory in bytes, or None on the CPU."""
        import torch
        if str(self.device).startswith("cuda"):
            return int(torch.cuda.get_device_properties(self.device).total_memory * fraction)
        return None

    # -- loading -------------------------------------------------------------------------
    def load_checkpoint(self, identity, source, config="", dtype="auto", log=None):
        """Load a checkpoint once per process; returns the (model, clip, vae) handles.

        log(line) hears which dtype was chosen and why, and the speed settings applied."""
        from latentloom.app.sd.handles import ClipHandle, ModelHandle, VaeHandle
        torch_dtype, why = speed.choose_dtype(dtype, self.device)
        key = self.store.load(identity, source, config, torch_dtype)
        comps = self.components(key)
        for line in [why] + comps["speed"] + self.notes:
            if log is not None:
                log(line)
        return ModelHandle(key), ClipHandle(key), VaeHandle(key)

    def components(self, key):
        """The checkpoint's components with this runtime's speed settings applied (also after a reload)."""
        comps = self.store.get(key)
        if "speed" not in comps:
            with comps["lock"]:
                if "speed" not in comps:
                    comps["speed"] = speed.optimize(comps, self.device, self.backend)
                    if self.offload is not None:
                        comps["speed"].append(self.offload.attach(comps))
        return comps

    def add_lora(self, model, clip, path, identity, strength_model, strength_clip):
        """Inject a LoRA file into the handles' modules (once) and return handles with it stacked."""
        from dataclasses import replace
        from latentloom.app.sd import lora
        from latentloom.app.sd.handles import LoraRef
        lora.prepare(self, model.checkpoint, clip.checkpoint, path, identity)
        return (replace(model, loras=model.loras + (LoraRef(path, identity, float(strength_model)),)),
                replace(clip, loras=clip.loras + (LoraRef(path, identity, float(strength_clip)),)))

    def load_controlnet(self, identity, path, dtype="auto"):
        """Read a ControlNet file or folder once per process; returns its ControlNetHandle."""
        from latentloom.app.sd import controlnet
        from latentloom.app.sd.handles import ControlNetHandle
        dt = pick_dtype(dtype, self.device)
        key = f"controlnet|{identity}|{dt}|{self.device}"
        self.store.extra(key, lambda: controlnet.read(path, dt))
        return ControlNetHandle(key)

    def load_vae(self, identity, path, dtype="auto"):
        """Read a VAE file or folder once per process; returns a VaeHandle usable wherever a checkpoint's is."""
        from latentloom.app.sd import vae_files
        from latentloom.app.sd.handles import VaeHandle
        dt = pick_dtype(dtype, self.device)
        key = f"vae|{identity}|{dt}|{self.device}"
        self.store.extra(key, lambda: vae_files.read(path, dt))
        return VaeHandle("", key)

    # -- borrowing modules -----------------------------------------------------------------
    @contextmanager
    def unet(self, model):
        """The U-Net of a ModelHandle with exactly its LoRA stack active, under the checkpoint's lock."""
        from latentloom.app.sd.lora import activated
        comps = self.components(model.checkpoint)
        with activated(self, comps, model.loras, "unet"):
            yield self._on_device(comps["unet"])

    @contextmanager
    def clip(self, clip):
        """TextModules(encoder, tokenizer) of a ClipHandle with its LoRA stack active."""
        from latentloom.app.sd.lora import activated
        comps = self.components(clip.checkpoint)
        with activated(self, comps, clip.loras, "text_encoder"):
            yield TextModules(self._on_device(comps["text_encoder"]), comps["tokenizer"])

    @contextmanager
    def vae(self, vae):
        """The autoencoder of a VaeHandle (a checkpoint's, or one LoadVAE read)."""
        if vae.file:
            entry = self.store.extra(vae.file)
            with entry["lock"]:
                yield self._on_device(entry["module"])
            return
        comps = self.components(vae.checkpoint)
        with comps["lock"]:
            yield self._on_device(comps["vae"])

    def run_finished(self):
        """The engine's end-of-run call: --lowvram offloads every module left on the device."""
        if self.offload is not None:
            self.offload.release()

    def _on_device(self, module, guest=False):
        if self.offload is not None:
            self.offload.use(module, guest)
        return module

    @contextmanager
    def controlnet(self, handle):
        """The ControlNetModel of a ControlNetHandle (read-only, shared)."""
        entry = self.store.extra(handle.key)
        with entry["lock"]:
            yield self._on_device(entry["module"], guest=True)  # beside the U-Net it guides

    def checkpoint_source(self, handle):
        """The folder, file or hub id a handle's checkpoint was loaded from."""
        return self.store.source(handle.checkpoint)

    def scheduler_config(self, model):
        """The checkpoint's scheduler config (a copy)."""
        return dict(self.components(model.checkpoint)["scheduler_config"])
