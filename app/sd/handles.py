"""Small values that travel along edges. Handles name models; they never carry mutated modules."""
from dataclasses import dataclass
from typing import Any


class Handle:
    """Frozen handles are their own cache identity: equal handles give equal results."""

    @property
    def cache_token(self):
        return repr(self)


@dataclass(frozen=True)
class LoraRef:
    path: str        # resolved file path
    identity: str    # file fingerprint: a changed file is a different LoRA
    strength: float


@dataclass(frozen=True)
class LoraFile(Handle):
    """A LoRA file a node wrote (TrainLoRA): LoadLoRA's `lora` input."""
    path: str
    identity: str    # its content hash


@dataclass(frozen=True)
class ModelHandle(Handle):
    """A U-Net: the loaded checkpoint it comes from plus the LoRA stack to activate."""
    checkpoint: str
    loras: tuple = ()


@dataclass(frozen=True)
class ClipHandle(Handle):
    checkpoint: str
    loras: tuple = ()


@dataclass(frozen=True)
class VaeHandle(Handle):
    checkpoint: str
    file: str = ""   # LoadVAE: the store key of a VAE read from its own file (checkpoint is then "")


@dataclass(frozen=True)
class ControlNetHandle(Handle):
    key: str         # the model store's key of the loaded ControlNet


@dataclass(frozen=True)
class SchedulerHandle(Handle):
    """A scheduler description: class name plus full config. Built fresh for every run."""
    name: str
    class_name: str
    config_json: str  # the resolved config, as sorted JSON

    @property
    def config(self):
        import json
        return json.loads(self.config_json)


@dataclass(frozen=True)
class NoiseSpec(Handle):
    """A seeded noise source: the sampler draws all its noise from one CPU generator."""
    seed: int


@dataclass(eq=False)
class Conditioning:
    embeds: Any          # tensor [1, 77 * chunks, dim]
    clip: ClipHandle     # to encode an empty chunk when the other side is longer
    clip_skip: int = 0
    guides: tuple = ()   # guide specs (with a .kind) the sampler binds through app.sd.guidance
    settings: tuple = ()  # ComfyUI entry options of these embeds, (name, value) pairs: strength, start_percent...
    extra: tuple = ()    # further ComfyUI entries, each (embeds, settings): app.sd.comfy.conds


@dataclass(eq=False)
class Latent:
    samples: Any                  # tensor [batch, 4, h/8, w/8], already scaled by the VAE factor
    empty: bool = False           # from EmptyLatent: text-to-image starts from pure noise
    mask: Any = None              # [batch, 1, h/8, w/8], 1 = repaint (inpainting)
    masked_image_latents: Any = None  # for 9-channel inpainting models
    inpaint_mask: Any = None      # the mask a 9-channel model gets beside them, when not `mask`
    #                               (ComfyUI's InpaintModelConditioning: rounded; even with no noise mask)
