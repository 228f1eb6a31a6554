"""The denoising loop, step for step as diffusers' SD pipelines run it.

text-to-image: StableDiffusionPipeline; a latent from an image with denoise s:
StableDiffusionImg2ImgPipeline(strength=s); a latent with a mask:
StableDiffusionInpaintPipeline (4-channel U-Nets re-noise the kept area every step,
9-channel ones get the mask and masked-image latents as extra input channels).
"""
import inspect

import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
from diffusers.utils.torch_utils import randn_tensor

from latentloom.app.core.errors import UserError
from latentloom.app.sd import guidance, schedulers
from latentloom.app.sd.images import preview


def _cfg_embeds(positive, negative, pad_chunk, batch, do_cfg):
    pos = positive.embeds
    neg = negative.embeds
    if do_cfg and pos.shape[1] != neg.shape[1]:  # long prompts: pad the shorter side with empty chunks
        longer = max(pos.shape[1], neg.shape[1])
        pos = _pad(pos, longer, pad_chunk(positive))
        neg = _pad(neg, longer, pad_chunk(negative))
    pos = pos.repeat(batch, 1, 1)
    if not do_cfg:
        return pos
    return torch.cat([neg.to(pos.dtype).repeat(batch, 1, 1), pos])


def _pad(embeds, length, chunk):
    while embeds.shape[1] < length:
        embeds = torch.cat([embeds, chunk.to(embeds.dtype)], dim=1)
    return embeds


def _batched(x, batch):
    if x.shape[0] == batch:
        return x
    if batch % x.shape[0]:
        raise UserError(f"a batch of {x.shape[0]} masks or images does not divide the batch of {batch} latents")
    return x.repeat(batch // x.shape[0], 1, 1, 1)


def _step_kwargs(scheduler, generator):
    params = set(inspect.signature(scheduler.step).parameters)
    kw = {}
    if "eta" in params:
        kw["eta"] = 0.0
    if "generator" in params:
        kw["generator"] = generator
    return kw


def _timesteps(scheduler, steps, strength, device, full):
    scheduler.set_timesteps(steps, device=device)
    if full:
        return scheduler.timesteps
    init = min(int(steps * strength), steps)
    t_start = max(steps - init, 0)
    if steps - t_start < 1:
        raise UserError(f"denoise {strength} leaves no step to run with {steps} steps; "
                        "raise denoise or steps")
    order = scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * order)
    return scheduler.timesteps[t_start * order:]


@torch.no_grad()
def sample(unet, positive, negative, latent, seed, scheduler_handle, steps, cfg, denoise,
           guidance_rescale=0.0, pad_chunk=None, progress=None, guides=()):
    """Returns the denoised latents. progress(step, total, preview_fn) is called after each step.

    guides: app.sd.guidance.Guide objects, asked for extra U-Net kwargs at every step."""
    if any(c.settings or c.extra for c in (positive, negative)):
        raise UserError("a conditioning of several ComfyUI entries or with entry options (ConditioningCombine, "
                        "ConditioningSetTimestepRange, ConditioningSetArea..., ConditioningSetMask) needs a "
                        "Scheduler with sampling comfyui")
    device = unet.device
    dtype = positive.embeds.dtype
    generator = torch.Generator("cpu").manual_seed(seed)
    scheduler = schedulers.build(scheduler_handle)
    batch = latent.samples.shape[0]
    do_cfg = cfg > 1.0
    embeds = _cfg_embeds(positive, negative, pad_chunk, batch, do_cfg).to(device)
    inpaint = latent.mask is not None
    nine = unet.config.in_channels == 9
    if nine and not inpaint and latent.inpaint_mask is not None:
        raise UserError("InpaintEncode with noise_mask false is ComfyUI's: run it with a Scheduler "
                        "whose sampling is comfyui")
    if nine and not inpaint:
        raise UserError("this is an inpainting model (9 input channels): feed the sampler a latent "
                        "from InpaintEncode")
    if nine and latent.masked_image_latents is None:
        raise UserError("a 9-channel inpainting model needs the latent from InpaintEncode "
                        "(SetLatentMask is for ordinary 4-channel models)")
    txt2img = latent.empty and denoise >= 1.0 and not inpaint
    full_noise = txt2img or (inpaint and denoise >= 1.0)
    timesteps = _timesteps(scheduler, steps, denoise, device, txt2img)
    init = latent.samples.to(device=device, dtype=dtype)
    noise = randn_tensor(tuple(init.shape), generator=generator, device=device, dtype=dtype)
    if full_noise:
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(batch))
    if inpaint:
        mask = _batched(latent.mask, batch).to(device=device, dtype=dtype)
        concat = mask if latent.inpaint_mask is None else _batched(latent.inpaint_mask, batch).to(device=device,
                                                                                                dtype=dtype)
        mask_in = torch.cat([concat] * 2) if do_cfg else concat
        if nine:
            masked = _batched(latent.masked_image_latents, batch).to(device=device, dtype=dtype)
            masked_in = torch.cat([masked] * 2) if do_cfg else masked
    step_kw = _step_kwargs(scheduler, generator)
    for i, t in enumerate(timesteps):
        model_in = torch.cat([latents] * 2) if do_cfg else latents
        model_in = scheduler.scale_model_input(model_in, t)
        if inpaint and nine:
            model_in = torch.cat([model_in, mask_in, masked_in], dim=1)
        extra = guidance.step_kwargs(guides, guidance.At(i, len(timesteps)), t, model_in, embeds)
        noise_pred = unet(model_in, t, encoder_hidden_states=embeds, return_dict=False, **extra)[0]
        if do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + cfg * (text - uncond)
            if guidance_rescale > 0.0:
                noise_pred = rescale_noise_cfg(noise_pred, text, guidance_rescale=guidance_rescale)
        latents = scheduler.step(noise_pred, t, latents, **step_kw, return_dict=False)[0]
        if inpaint and not nine:
            kept = init
            if i < len(timesteps) - 1:
                kept = scheduler.add_noise(init, noise, torch.tensor([timesteps[i + 1]]))
            latents = (1 - mask) * kept + mask * latents
        if progress is not None:
            current = latents
            progress(i + 1, len(timesteps), lambda: preview(current))
    return latents
