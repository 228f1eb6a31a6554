"""The k-diffusion samplers ComfyUI runs, by its sampler_name (Karras et al. / DPM-Solver formulas).

Each takes model(x, sigma) -> denoised, the start x, the sigmas, a noise source and a
step callback; ComfyUI's `ddim` is Euler. uni_pc(_bh2) and deis live in unipc.py and deis.py.
"""
import torch
from scipy import integrate

from latentloom.app.sd.comfy.deis import deis
from latentloom.app.sd.comfy.unipc import uni_pc, uni_pc_bh2


def _d(x, sigma, denoised):
    return (x - denoised) / sigma


def _ancestral(sigma_from, sigma_to, eta=1.0):
    if not eta:
        return sigma_to, 0.0
    up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    return (sigma_to ** 2 - up ** 2) ** 0.5, up


def euler(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        x = x + _d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        step(i, x)
    return x


def euler_ancestral(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = _ancestral(sigmas[i], sigmas[i + 1])
        if down == 0:
            x = denoised
        else:
            x = x + _d(x, sigmas[i], denoised) * (down - sigmas[i]) + noise(sigmas[i], sigmas[i + 1]) * up
        step(i, x)
    return x


def heun(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        d = _d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = _d(x2, sigmas[i + 1], model(x2, sigmas[i + 1]))
            x = x + (d + d2) / 2 * dt
        step(i, x)
    return x


def dpm_2(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        d = _d(x, sigmas[i], model(x, sigmas[i]))
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x2 = x + d * (mid - sigmas[i])
            x = x + _d(x2, mid, model(x2, mid)) * (sigmas[i + 1] - sigmas[i])
        step(i, x)
    return x


def dpm_2_ancestral(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = _ancestral(sigmas[i], sigmas[i + 1])
        d = _d(x, sigmas[i], denoised)
        if down == 0:
            x = x + d * (down - sigmas[i])
        else:
            mid = sigmas[i].log().lerp(down.log(), 0.5).exp()
            x2 = x + d * (mid - sigmas[i])
            x = x + _d(x2, mid, model(x2, mid)) * (down - sigmas[i])
            x = x + noise(sigmas[i], sigmas[i + 1]) * up
        step(i, x)
    return x


def _lms_coeff(order, t, i, j):
    def basis(tau):
        prod = 1.0
        for k in range(order):
            if k != j:
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod
    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


def lms(model, x, sigmas, noise, step, order=4):
    t = sigmas.detach().cpu().numpy()
    ds = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        ds = (ds + [_d(x, sigmas[i], denoised)])[-order:]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            cur = min(i + 1, order)
            coeffs = [_lms_coeff(cur, t, i, j) for j in range(cur)]
            x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
        step(i, x)
    return x


def dpmpp_2m(model, x, sigmas, noise, step):
    old = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
        h = t_next - t
        if old is not None and sigmas[i + 1] != 0:
            r = (t + sigmas[i - 1].log()) / h
            denoised_mixed = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        else:
            denoised_mixed = denoised
        x = ((-t_next).exp() / (-t).exp()) * x - (-h).expm1() * denoised_mixed
        old = denoised
        step(i, x)
    return x


def dpmpp_2m_sde(model, x, sigmas, noise, step, eta=1.0):
    old, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            ls, lt = -sigmas[i].log(), -sigmas[i + 1].log()
            h = lt - ls
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lt.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            if old is not None:
                x = x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / (h_last / h)) * (denoised - old)
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt()
        old, h_last = denoised, h
        step(i, x)
    return x


def dpmpp_sde(model, x, sigmas, noise, step, eta=1.0, r=0.5):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            ls, lt = -sigmas[i].log(), -sigmas[i + 1].log()
            h = lt - ls
            ls1 = ls + r * h
            s1 = (-ls1).exp()
            alpha_s, alpha_s1, alpha_t = sigmas[i] * ls.exp(), s1 * ls1.exp(), sigmas[i + 1] * lt.exp()
            sd, su = _ancestral((-ls).exp(), (-ls1).exp(), eta)
            h_ = -sd.log() - ls
            x2 = (alpha_s1 / alpha_s) * (-h_).exp() * x - alpha_s1 * (-h_).expm1() * denoised
            x2 = x2 + alpha_s1 * noise(sigmas[i], s1) * su
            denoised2 = model(x2, s1)
            sd, su = _ancestral((-ls).exp(), (-lt).exp(), eta)
            h_ = -sd.log() - ls
            mixed = (1 - 1 / (2 * r)) * denoised + 1 / (2 * r) * denoised2
            x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * mixed
            x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * su
        step(i, x)
    return x


def ddpm(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        sigma, prev = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        eps = (x - denoised) / sigma
        x = x / torch.sqrt(1.0 + sigma ** 2.0)
        ac, ac_prev = 1 / (sigma * sigma + 1), 1 / (prev * prev + 1)
        alpha = ac / ac_prev
        x = (1.0 / alpha).sqrt() * (x - (1 - alpha) * eps / (1 - ac).sqrt())
        if prev > 0:
            x = x + ((1 - alpha) * (1.0 - ac_prev) / (1.0 - ac)).sqrt() * noise(sigma, prev)
            x = x * torch.sqrt(1.0 + prev ** 2.0)
        step(i, x)
    return x


def lcm(model, x, sigmas, noise, step):
    for i in range(len(sigmas) - 1):
        x = model(x, sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1]
        step(i, x)
    return x


SAMPLERS = {"euler": euler, "ddim": euler, "euler_ancestral": euler_ancestral, "heun": heun, "dpm_2": dpm_2,
            "dpm_2_ancestral": dpm_2_ancestral, "lms": lms, "dpmpp_2m": dpmpp_2m, "dpmpp_2m_sde": dpmpp_2m_sde,
            "dpmpp_sde": dpmpp_sde, "ddpm": ddpm, "lcm": lcm, "uni_pc": uni_pc, "uni_pc_bh2": uni_pc_bh2,
            "deis": deis}
BROWNIAN = {"dpmpp_2m_sde", "dpmpp_sde"}
