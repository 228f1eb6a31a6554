"""The sampling loop as ComfyUI's KSampler runs it, on our diffusers U-Net.

Initial noise: one CPU fp32 torch.randn for the whole batch from a generator seeded with the
seed, scaled by sqrt(1 + sigma_max^2) (or by sigma when starting later) and added to the latent.
The U-Net sees x / sqrt(sigma^2 + 1) and the nearest integer timestep; guidance mixes the
denoised predictions; cfg 1 skips the unconditional pass; a noise mask keeps the original latent
(re-noised to the current sigma) outside it.
"""
import math
import warnings

import torch

from latentloom.app.core.errors import UserError
from latentloom.app.sd import guidance
from latentloom.app.sd.comfy import conds, samplers, schedules
from latentloom.app.sd.images import preview


def gaussian_noise(x, seed):
    """Ancestral and DDPM step noise: a fresh generator seeded with the seed, on x's device."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(x.size(), dtype=x.dtype, device=x.device, generator=generator)


class BrownianNoise:
    """SDE step noise from a torchsde Brownian tree over [sigma_min, sigma_max] seeded with the seed."""

    def __init__(self, x, sigma_min, sigma_max, seed):
        import torchsde
        self.device, self.dtype = x.device, x.dtype
        (t0, t1), self.sign = sorted((sigma_min, sigma_max)), (1 if sigma_min < sigma_max else -1)
        self.tree = torchsde.BrownianTree(t0.cpu(), torch.zeros_like(x).cpu(), t1.cpu(), entropy=seed)

    def __call__(self, sigma, sigma_next):
        lo, hi = sorted((sigma, sigma_next))
        sign = 1 if sigma < sigma_next else -1
        with warnings.catch_warnings():  # float rounding at the interval's ends, as in ComfyUI
            warnings.filterwarnings("ignore", message="Should have", category=UserWarning)
            w = self.tree(lo.cpu().float(), hi.cpu().float()).to(self.device, self.dtype) * (self.sign * sign)
        return w / (sigma_next - sigma).abs().sqrt()


def _embeds(positive, negative, batch, device, dtype):
    return [c.embeds.to(device=device, dtype=dtype).repeat(batch, 1, 1) for c in (positive, negative)]


def _eps(unet, x, t, embeds, extra, guides, sigma):
    t = t.expand(x.shape[0])
    kwargs = guidance.step_kwargs(guides, guidance.At(sigma=float(sigma)), t, x, embeds) if guides else {}
    if extra is not None:
        x = torch.cat([x, extra.repeat(x.shape[0] // extra.shape[0], 1, 1, 1)], dim=1)
    return unet(x, t, encoder_hidden_states=embeds, return_dict=False, **kwargs)[0].float()


def rescale_cfg(x, sigma, cond_x0, uncond_x0, cfg, multiplier):
    """ComfyUI's RescaleCFG: CFG rescaled in v-prediction space (its expressions, in its order)."""
    cond, uncond = x - cond_x0, x - uncond_x0
    xs = x / (sigma * sigma + 1.0)
    cond = ((xs - (x - cond)) * (sigma ** 2 + 1.0) ** 0.5) / sigma
    uncond = ((xs - (x - uncond)) * (sigma ** 2 + 1.0) ** 0.5) / sigma
    x_cfg = uncond + cfg * (cond - uncond)
    ratio = torch.std(cond, dim=(1, 2, 3), keepdim=True) / torch.std(x_cfg, dim=(1, 2, 3), keepdim=True)
    x_final = multiplier * (x_cfg * ratio) + (1.0 - multiplier) * x_cfg
    return x - (x - (xs - x_final * sigma / (sigma * sigma + 1.0) ** 0.5))


def denoiser(unet, ms, positive, negative, cfg, batch, extra=None, guides=(), rescale=0.0):
    """model(x, sigma) -> the guided denoised latent, as ComfyUI's EPS model wrapper computes it.

    guides: app.sd.guidance.Guide objects asked at every U-Net call (At.sigma says where);
    rescale: RescaleCFG's multiplier (0 = plain CFG)."""
    device, dtype = unet.device, unet.dtype
    pos, neg = _embeds(positive, negative, batch, device, dtype)
    skip_uncond = math.isclose(cfg, 1.0)
    mixer = None  # several ComfyUI entries: each side is their weighted mean (app.sd.comfy.conds)
    if conds.several(positive) or conds.several(negative):
        mixer = conds.Mixer(positive, negative, ms, dtype, bool(guides))

    def guided(x, sigma, cond_x0, uncond_x0):
        if rescale:
            return rescale_cfg(x, sigma, cond_x0, uncond_x0, cfg, rescale)
        return uncond_x0 + (cond_x0 - uncond_x0) * cfg

    def model(x, sigma):
        xc = (x / (sigma ** 2 + 1.0) ** 0.5).to(dtype)
        t = ms.timestep(sigma.reshape(1).cpu()).float().to(device)
        if mixer is not None:
            def eps(xb, eb, areas):
                return _eps(unet, xb, t, eb, conds.cropped(extra, areas, xb.shape[0] // len(areas)), guides, sigma)
            return guided(x, sigma, *mixer(eps, x, xc, sigma, skip_uncond))
        if skip_uncond:
            return x - _eps(unet, xc, t, pos, extra, guides, sigma) * sigma
        if pos.shape == neg.shape:
            cond, uncond = _eps(unet, torch.cat([xc, xc]), t, torch.cat([pos, neg]), extra, guides, sigma).chunk(2)
        else:
            cond, uncond = _eps(unet, xc, t, pos, extra, guides, sigma), _eps(unet, xc, t, neg, extra, guides, sigma)
        return guided(x, sigma, x - cond * sigma, x - uncond * sigma)
    return model


def _mask_and_extra(unet, latent, batch, device):
    nine = unet.config.in_channels == 9
    if nine and latent.masked_image_latents is None:
        raise UserError("a 9-channel inpainting model needs the latent from InpaintEncode")
    mask = None if latent.mask is None else latent.mask.float().to(device)
    if mask is not None and mask.shape[0] != batch:
        mask = mask.repeat(batch // mask.shape[0], 1, 1, 1)
    extra = None
    if nine:  # InpaintEncode's own mask for the model, when it has one (comfyui masking, noise_mask false)
        concat = mask if latent.inpaint_mask is None else latent.inpaint_mask.float().to(device)
        concat = concat.repeat(batch // concat.shape[0], 1, 1, 1)
        extra = torch.cat([concat, latent.masked_image_latents.to(device)], dim=1).to(unet.dtype)
    return mask, extra


def window(sigmas, handle):
    """KSamplerAdvanced's start_at_step / end_at_step; None when nothing is left to run."""
    if handle.end_at_step < len(sigmas) - 1:
        sigmas = sigmas[:handle.end_at_step + 1].clone()
        if not handle.return_with_leftover_noise:
            sigmas[-1] = 0
    if handle.start_at_step:
        if handle.start_at_step >= len(sigmas) - 1:
            return None
        sigmas = sigmas[handle.start_at_step:]
    return sigmas


@torch.no_grad()
def sample(unet, positive, negative, latent, seed, handle, steps, cfg, denoise, progress=None, guides=(),
           rescale=0.0):
    run = samplers.SAMPLERS.get(handle.sampler)
    if run is None:
        raise UserError(f"{handle.sampler!r} is not a ComfyUI sampler "
                        f"(those are: {', '.join(sorted(samplers.SAMPLERS))})")
    ms = schedules.ModelSampling(handle.config)
    sigmas = schedules.sigmas_for(ms, handle.scheduler, handle.sampler, steps, denoise, handle.keep_penultimate)
    sigmas = window(sigmas, handle)
    if sigmas is None:
        return latent.samples
    device = unet.device
    image = latent.samples.float()
    batch = image.shape[0]
    noise = (torch.randn(image.shape, dtype=torch.float32, generator=torch.Generator().manual_seed(seed))
             if handle.add_noise else torch.zeros(image.shape))
    noise, image, sigmas = noise.to(device), image.to(device), sigmas.to(device)
    mask, extra = _mask_and_extra(unet, latent, batch, device)
    model = denoiser(unet, ms, positive, negative, cfg, batch, extra, guides, rescale)
    if mask is not None:
        inpaint_noise = noise
        if handle.sampler == "ddim":  # ComfyUI's ddim re-noises the kept area with seed + 1
            inpaint_noise = torch.randn(noise.shape, generator=torch.Generator().manual_seed(seed + 1)).to(device)
        inner = model

        def model(x, sigma):
            x = x * mask + (inpaint_noise * sigma + image) * (1.0 - mask)
            return inner(x, sigma) * mask + image * (1.0 - mask)
    if len(sigmas) > 1 and (math.isclose(float(ms.sigma_max), float(sigmas[0]), rel_tol=1e-05)
                            or float(sigmas[0]) > float(ms.sigma_max)):
        x = noise * torch.sqrt(1.0 + sigmas[0] ** 2.0) + image
    else:
        x = noise * sigmas[0] + image if len(sigmas) else image
    if handle.sampler in samplers.BROWNIAN:
        positive_sigmas = sigmas[sigmas > 0]
        step_noise = BrownianNoise(x, positive_sigmas.min(), sigmas.max(), seed) if len(positive_sigmas) else None
    else:
        step_noise = gaussian_noise(x, seed)
    total = len(sigmas) - 1

    def step(i, current):
        if progress is not None:
            progress(i + 1, total, lambda: preview(current))
    return run(model, x, sigmas, step_noise, step)
