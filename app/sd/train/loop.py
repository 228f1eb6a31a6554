"""The training loop of diffusers' train_text_to_image_lora, on copies of the store's modules.

Frozen base and VAE; peft LoRA layers (B = 0 at the start) on to_q, to_k, to_v, to_out.0 and
optionally the text encoder's q/k/v/out projections; DDPM noise from the checkpoint's schedule;
epsilon or v-prediction targets; AdamW; fp32, or bf16/fp16 autocast on a GPU. Every random draw
(LoRA init, data order, VAE sample, noise, timesteps) comes from one seeded CPU generator, so a
run is reproducible and a resumed run equals an uninterrupted one.
"""
import copy
import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from latentloom.app.core.errors import UserError

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAM = dict(betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)  # the recipe's defaults
MAX_GRAD_NORM = 1.0
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Config:
    rank: int = 4
    alpha: float = 0.0           # 0: the rank (scale 1)
    steps: int = 500
    lr: float = 1e-4
    batch: int = 1
    resolution: int = 512
    seed: int = 0
    text_encoder: bool = False
    precision: str = "auto"      # auto: the base's dtype on a GPU, fp32 on the CPU
    gradient_checkpointing: bool = False
    prediction_type: str = ""    # filled in from the checkpoint

    def resolved(self):
        return replace(self, alpha=float(self.alpha or self.rank))

    def same_run(self, other):
        """Equal but for the step count (what --resume may change)."""
        return replace(self, steps=0) == replace(other, steps=0)


def check_config(config, flag):
    """Errors naming the flag/param: flag(name) -> how to name it."""
    if config.rank < 1:
        raise UserError(f"{flag('rank')}: the rank must be at least 1, got {config.rank}")
    if config.alpha < 0:
        raise UserError(f"{flag('alpha')}: must not be negative, got {config.alpha}")
    if config.steps < 1:
        raise UserError(f"{flag('steps')}: must be at least 1, got {config.steps}")
    if config.batch < 1:
        raise UserError(f"{flag('batch')}: must be at least 1, got {config.batch}")
    if not config.lr > 0:
        raise UserError(f"{flag('lr')}: must be above 0, got {config.lr}")
    if config.resolution < 8 or config.resolution % 8:
        raise UserError(f"{flag('resolution')}: must be a multiple of 8, got {config.resolution}")
    if config.precision not in PRECISIONS:
        raise UserError(f"{flag('precision')}: one of {', '.join(PRECISIONS)}")


def check_sd1(unet, encoder, where):
    """Refuse bases this recipe does not fit: inpainting, SD 2.x and SDXL U-Nets."""
    cfg = unet.config
    if cfg.in_channels != 4:
        reason = f"its U-Net takes {cfg.in_channels} input channels (an inpainting model)"
    elif cfg.use_linear_projection or cfg.addition_embed_type or not isinstance(cfg.cross_attention_dim, int):
        reason = "its U-Net has the SD 2.x/XL layout"
    elif type(encoder).__name__ != "CLIPTextModel" or encoder.config.hidden_size != cfg.cross_attention_dim:
        reason = "its text encoder is not SD 1.x's CLIP"
    else:
        return
    raise UserError(f"{where}: not a Stable Diffusion 1.x base ({reason}); LoRA training supports SD 1.x only")


class Trainer:
    """One training run. step() does one optimizer step; state()/load_state() save and resume it."""

    def __init__(self, env, model, clip, vae, dataset, config, where="base"):
        from diffusers import DDPMScheduler
        self.device = env.device
        self.data = dataset
        self.gen = torch.Generator().manual_seed(config.seed)
        with env.unet(model) as unet, env.clip(clip) as te:
            check_sd1(unet, te.encoder, where)
            config = self._precision(config, unet.dtype)
            self.unet = _trainable_copy(unet, self.weight_dtype)
            tokens = te.tokenizer(dataset.captions, padding="max_length", max_length=te.tokenizer.model_max_length,
                                  truncation=True, return_tensors="pt").input_ids
            self.tokens = tokens.to(self.device)
            if config.text_encoder:
                self.te, self.embeds = _trainable_copy(te.encoder, self.weight_dtype), None
            else:
                self.te = None
                with torch.no_grad():
                    self.embeds = torch.cat([te.encoder(t[None])[0] for t in self.tokens]).float()
        self.scheduler = DDPMScheduler.from_config(env.scheduler_config(model))
        self.config = replace(config, prediction_type=self.scheduler.config.prediction_type).resolved()
        with env.vae(vae) as v:
            self.scaling = v.config.scaling_factor
            self.mean, self.std = _latent_dists(v, dataset.pixels, self.device)
        self.params = self._add_lora()
        self.optimizer = torch.optim.AdamW(self.params, lr=self.config.lr, **ADAM)
        self.scaler = torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None
        self.order, self.pos, self.done, self.losses = torch.randperm(len(dataset.names), generator=self.gen), 0, 0, []

    def _precision(self, config, base_dtype):
        precision = config.precision
        if precision == "auto":
            names = {torch.bfloat16: "bf16", torch.float16: "fp16"}
            precision = names.get(base_dtype, "fp32") if self.device.startswith("cuda") else "fp32"
        if precision != "fp32" and not self.device.startswith("cuda"):
            raise UserError(f"precision {precision}: mixed precision needs a GPU; use fp32 on {self.device}")
        self.weight_dtype = HALF.get(precision, torch.float32)
        self.autocast = (torch.autocast("cuda", dtype=self.weight_dtype) if precision != "fp32" else nullcontext())
        return replace(config, precision=precision)

    def _add_lora(self):
        """peft layers on the copies; A gaussian (std 1/rank) from our generator, B zero; fp32 params."""
        from peft import LoraConfig, inject_adapter_in_model
        params = []
        for module, targets in ((self.unet, UNET_TARGETS), (self.te, TE_TARGETS)):
            if module is None:
                continue
            cfg = LoraConfig(r=self.config.rank, lora_alpha=self.config.alpha, init_lora_weights="gaussian",
                             target_modules=targets)
            inject_adapter_in_model(cfg, module)
            if self.config.gradient_checkpointing:
                _checkpointing(module)
            for name, p in sorted(module.named_parameters()):
                if "lora_" in name:
                    with torch.no_grad():
                        p.data = p.data.float()
                        if "lora_A" in name:
                            p.copy_(torch.randn(p.shape, generator=self.gen) / self.config.rank)
                        else:
                            p.zero_()
                    p.requires_grad_(True)
                    params.append(p)
        return params

    def _batch(self):
        """The next `batch` indices of a per-epoch shuffle (a batch may span two epochs)."""
        idx = []
        while len(idx) < self.config.batch:
            if self.pos >= len(self.order):
                self.order, self.pos = torch.randperm(len(self.order), generator=self.gen), 0
            idx.append(int(self.order[self.pos]))
            self.pos += 1
        return torch.tensor(idx)

    def step(self):
        """One optimizer step; returns its loss."""
        idx = self._batch()
        shape = (len(idx),) + tuple(self.mean.shape[1:])
        sample = torch.randn(shape, generator=self.gen).to(self.device)
        latents = (self.mean[idx] + self.std[idx] * sample) * self.scaling
        noise = torch.randn(shape, generator=self.gen).to(self.device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(idx),), generator=self.gen).to(self.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        target = noise if self.config.prediction_type == "epsilon" else self.scheduler.get_velocity(latents, noise, t)
        with self.autocast:
            states = self.te(self.tokens[idx.to(self.device)])[0] if self.te is not None else self.embeds[idx]
            pred = self.unet(noisy.to(self.weight_dtype), t, states.to(self.weight_dtype), return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.done += 1
        self.losses.append(float(loss.detach()))
        return self.losses[-1]

    # -- the LoRA and the resumable state ---------------------------------------------------
    def lora_parts(self):
        """{"unet": peft state dict, "text_encoder": ...} of the trained layers."""
        from peft import get_peft_model_state_dict
        parts = {"unet": get_peft_model_state_dict(self.unet)}
        if self.te is not None:
            parts["text_encoder"] = get_peft_model_state_dict(self.te)
        return parts

    def state(self, data_hash=""):
        """(tensors, metadata) for a .trainstate file: LoRA params, AdamW moments, generator, data order."""
        tensors = {f"param.{i}": p.detach().cpu().contiguous() for i, p in enumerate(self.params)}
        for i, p in enumerate(self.params):
            for k, v in self.optimizer.state.get(p, {}).items():
                tensors[f"adam.{i}.{k}"] = torch.as_tensor(v).cpu().contiguous()
        tensors["rng"] = self.gen.get_state()
        tensors["order"] = self.order.clone()
        tensors["loss"] = torch.tensor(self.losses, dtype=torch.float64)
        if self.scaler is not None:
            tensors["scaler"] = torch.tensor([self.scaler.get_scale(), self.scaler.state_dict()["_growth_tracker"]],
                                             dtype=torch.float64)
        meta = {"step": str(self.done), "pos": str(self.pos), "config": json.dumps(asdict(self.config)),
                "data": data_hash}
        return tensors, meta

    def load_state(self, tensors, meta, data_hash="", where="--resume"):
        saved = Config(**json.loads(meta["config"]))
        if not saved.same_run(self.config):
            diff = ", ".join(f"{k} {v!r} (now {getattr(self.config, k)!r})" for k, v in asdict(saved).items()
                             if k != "steps" and getattr(self.config, k) != v)
            raise UserError(f"{where}: the saved training used other settings: {diff}")
        if meta.get("data", "") != data_hash:
            raise UserError(f"{where}: the training data changed since the saved state")
        if int(meta["step"]) > self.config.steps:
            raise UserError(f"{where}: the saved state is at step {meta['step']}, past --steps {self.config.steps}")
        with torch.no_grad():
            for i, p in enumerate(self.params):
                p.copy_(tensors[f"param.{i}"])
        state = {}
        for i, p in enumerate(self.params):
            moments = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"adam.{i}.")}
            if moments:
                state[i] = {k: (v if k == "step" else v.to(p.device)) for k, v in moments.items()}
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        self.gen.set_state(tensors["rng"])
        self.order, self.pos, self.done = tensors["order"].clone(), int(meta["pos"]), int(meta["step"])
        self.losses = [float(v) for v in tensors["loss"]]
        if self.scaler is not None and "scaler" in tensors:
            scale, tracker = tensors["scaler"].tolist()
            self.scaler.load_state_dict({**self.scaler.state_dict(), "scale": scale, "_growth_tracker": int(tracker)})


def _trainable_copy(module, dtype):
    """A private copy (the shared module is never touched), without other LoRAs' peft layers, frozen."""
    from diffusers.utils.peft_utils import recurse_remove_peft_layers
    module = copy.deepcopy(module)
    if getattr(module, "peft_config", None) is not None:
        recurse_remove_peft_layers(module)
        del module.peft_config
        if getattr(module, "_hf_peft_config_loaded", False):
            module._hf_peft_config_loaded = None
    module.requires_grad_(False)
    module.to(dtype=dtype)
    module.train()
    return module


def _checkpointing(module):
    if hasattr(module, "enable_gradient_checkpointing"):  # diffusers
        module.enable_gradient_checkpointing()
    elif hasattr(module, "activation_checkpointing_enable"):  # transformers 5
        module.activation_checkpointing_enable({"use_reentrant": False})
    else:
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


@torch.no_grad()
def _latent_dists(vae, pixels, device):
    """The VAE's latent distribution per image (mean, std) in fp32: encoded once, sampled every step."""
    means, stds = [], []
    for x in pixels:
        dist = vae.encode(x[None].to(device=vae.device, dtype=vae.dtype)).latent_dist
        means.append(dist.mean.float())
        stds.append(dist.std.float())
    return torch.cat(means).to(device), torch.cat(stds).to(device)
