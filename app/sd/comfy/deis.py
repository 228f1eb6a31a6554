"""ComfyUI's deis: DEIS (Zhang & Chen, 2022), the time-polynomial "tAB" variant, order up to 3.

The sigmas are mapped to the time t of a linear VP-SDE fitted to EDM's range (sigma 0.002 at
t = 1e-3, sigma 80 at t = 1), whatever the model's range. Each step extrapolates the noise
prediction eps = (x - denoised) / sigma through the last `order` points as a Lagrange polynomial
in t and integrates it against dsigma/dt over the step; the integrals are sums over 10000 evenly
spaced points (both ends included) times (t_next - t) / 10000, in float32, as ComfyUI computes them.
A step to sigma 0 is an Euler step.
"""
import torch

EPS_T, EDM_SIGMA_MIN, EDM_SIGMA_MAX = 1e-3, 0.002, 80.0
POINTS, MAX_ORDER = 10000, 3


def vp_line():
    """beta_0 and beta_1 of the VP-SDE with log(1 + sigma^2) = (beta_1 - beta_0) t^2 / 2 + beta_0 t."""
    lo, hi = (torch.log(torch.tensor(s) ** 2 + 1) for s in (EDM_SIGMA_MIN, EDM_SIGMA_MAX))
    slope = 2 * (lo / EPS_T - hi) / (EPS_T - 1)
    beta_0 = hi - 0.5 * slope
    return beta_0, slope + beta_0


def sigma_to_t(sigmas, beta_0, beta_1):
    d = beta_1 - beta_0
    return ((beta_0 ** 2 + 2 * d * (sigmas ** 2 + 1).log()).sqrt() - beta_0) / d


def dsigma_dt(t, beta_0, beta_1):
    alpha_bar = torch.exp(-0.5 * t ** 2 * (beta_1 - beta_0) - t * beta_0)
    return 0.5 * (t * (beta_1 - beta_0) + beta_0) / torch.sqrt(alpha_bar * (1 - alpha_bar))


def weights(t, i, order, beta_0, beta_1):
    """The step i coefficients of eps at t[i], t[i - 1], ... (Lagrange basis integrals)."""
    taus = torch.linspace(t[i], t[i + 1], POINTS)
    dtau = (t[i + 1] - t[i]) / POINTS
    rate = dsigma_dt(taus, beta_0, beta_1)
    nodes = t[[i - k for k in range(order)]]
    out = []
    for j in range(order):
        basis = 1
        for k in range(order):
            if k != j:
                basis = basis * ((taus - nodes[k]) / (nodes[j] - nodes[k]))
        out.append(torch.sum(rate * basis) * dtau)
    return out


def deis(model, x, sigmas, noise, step):
    beta_0, beta_1 = vp_line()
    t = sigma_to_t(sigmas.detach().cpu().float(), beta_0, beta_1)
    eps_history = []
    for i in range(len(sigmas) - 1):
        eps = (x - model(x, sigmas[i])) / sigmas[i]
        order = min(MAX_ORDER, i + 1) if sigmas[i + 1] > 0 else 1
        if order == 1:
            x = x + (sigmas[i + 1] - sigmas[i]) * eps
        else:
            c = weights(t, i, order, beta_0, beta_1)
            x = x + c[0] * eps
            for k in range(1, order):
                x = x + c[k] * eps_history[-k]
        eps_history = (eps_history + [eps])[-(MAX_ORDER - 1):]
        step(i, x)
    return x
