"""ComfyUI's discrete model sampling (float64 betas, integer timesteps) and its sigma schedules."""
import math

import numpy as np
import scipy.stats
import torch

from latentloom.app.core.errors import UserError
from latentloom.app.sd.comfy import DROP_PENULTIMATE



class ModelSampling:
    """sigmas of the 1000 training timesteps from the checkpoint's scheduler config, as ComfyUI
    builds them: betas in float64, then sigmas and log-sigmas stored in float32."""

    def __init__(self, config):
        n = int(config.get("num_train_timesteps", 1000))
        start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
        kind = config.get("beta_schedule", "scaled_linear")
        if kind == "scaled_linear":
            betas = torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2
        elif kind == "linear":
            betas = torch.linspace(start, end, n, dtype=torch.float64)
        else:
            raise UserError(f"ComfyUI sampling supports linear and scaled_linear betas, not {kind!r}")
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def timestep(self, sigma):
        """The nearest training timestep (an integer, as a float tensor) to sigma, in log space."""
        dists = sigma.log().reshape(-1).cpu() - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def sigma(self, timestep):
        """Log-linear interpolation between the training sigmas."""
        t = torch.clamp(timestep.float(), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def percent_to_sigma(self, percent):
        """The sigma a fraction of the way through sampling (0: above every sigma; 1: zero)."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma(torch.tensor((1.0 - percent) * 999.0)).item()


def normal(ms, steps, sgm=False):
    start, end = ms.timestep(ms.sigma_max), ms.timestep(ms.sigma_min)
    append_zero = True
    if sgm:
        ts = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append_zero = False
        ts = torch.linspace(start, end, steps)
    sigs = [float(ms.sigma(t)) for t in ts]
    return torch.FloatTensor(sigs + ([0.0] if append_zero else []))


def simple(ms, steps):
    stride = len(ms.sigmas) / steps
    return torch.FloatTensor([float(ms.sigmas[-(1 + int(x * stride))]) for x in range(steps)] + [0.0])


def ddim_uniform(ms, steps):
    x, sigs = 1, [0.0]
    if math.isclose(float(ms.sigmas[x]), 0, abs_tol=0.00001):
        steps, sigs = steps + 1, []
    stride = max(len(ms.sigmas) // steps, 1)
    while x < len(ms.sigmas):
        sigs.append(float(ms.sigmas[x]))
        x += stride
    return torch.FloatTensor(sigs[::-1])


def beta(ms, steps, a=0.6, b=0.6):
    last = len(ms.sigmas) - 1
    ts = np.rint(scipy.stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), a, b) * last)
    sigs, previous = [], -1
    for t in ts:
        if t != previous:
            sigs.append(float(ms.sigmas[int(t)]))
        previous = t
    return torch.FloatTensor(sigs + [0.0])


def karras(n, sigma_min, sigma_max, rho=7.0):
    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return torch.cat([(hi + ramp * (lo - hi)) ** rho, torch.zeros(1)])


def exponential(n, sigma_min, sigma_max):
    return torch.cat([torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp(), torch.zeros(1)])


def schedule(ms, name, steps):
    if name in ("karras", "exponential"):
        fn = karras if name == "karras" else exponential
        return fn(steps, float(ms.sigma_min), float(ms.sigma_max))
    table = {"normal": normal, "sgm_uniform": lambda m, s: normal(m, s, sgm=True), "simple": simple,
             "ddim_uniform": ddim_uniform, "beta": beta}
    return table[name](ms, steps)


def sigmas_for(ms, scheduler, sampler, steps, denoise=1.0, keep_penultimate=False):
    """KSampler's sigmas: one more step with the penultimate dropped for some samplers, and
    denoise < 1 builds int(steps / denoise) steps and keeps the last `steps`.
    keep_penultimate: BasicScheduler's sigmas (SamplerCustom), which never drop it."""
    def calc(n):
        drop = sampler in DROP_PENULTIMATE and not keep_penultimate
        sig = schedule(ms, scheduler, n + 1 if drop else n)
        return torch.cat([sig[:-2], sig[-1:]]) if drop else sig
    if denoise is None or denoise > 0.9999:
        return calc(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return calc(int(steps / denoise))[-(steps + 1):]
