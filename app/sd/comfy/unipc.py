"""ComfyUI's uni_pc and uni_pc_bh2: UniPC (Zhao et al., 2023), multistep, on the data prediction.

ComfyUI runs it in variance-preserving form: x is divided by sqrt(1 + sigma0^2) first, a last
sigma of 0 is replaced by 0.001, and the result is divided by that sigma's alpha at the end.
Order min(3, steps - 1), raised by one per warm-up step and lowered towards the end; every step
but the last is corrected (UniC), reusing the model call at the predicted point; B(h) is h (bh1)
or e^h - 1 (bh2).
"""
import torch

LAST_SIGMA = 0.001  # what UniPC runs to when the schedule ends at sigma 0


def vp(sigma):
    """alpha, std and lambda = log(alpha / std) of sigma's VP time, in the input's dtype."""
    log_alpha = 0.5 * torch.log(1 / (sigma * sigma + 1))
    one_minus = 1.0 - torch.exp(2.0 * log_alpha)
    return log_alpha.exp(), one_minus.sqrt(), log_alpha - 0.5 * one_minus.log()


def system(rks, hh, bh2):
    """R (row i: r_k^(i-1)), b (b_i = i! * hh * phi_(i+1)(hh) / B(h)) and B(h) for len(rks) orders."""
    big_b = torch.expm1(hh) if bh2 else hh
    g = torch.expm1(hh) / hh - 1  # hh * phi_2(hh)
    rows, b, fact = [], [], 1
    for i in range(1, len(rks) + 1):
        rows.append(rks ** (i - 1))
        b.append(g * fact / big_b)
        fact *= i + 1
        g = g / hh - 1 / fact
    return torch.stack(rows), torch.stack(b), big_b


def _weigh(diffs, rhos):
    return torch.tensordot(torch.stack(diffs, dim=1), rhos.to(diffs[0].device), dims=([1], [0]))


def update(model, x, history, sigma, order, correct, bh2):
    """One UniP step from history[-1] to sigma with `order` points (and UniC when `correct`).
    history holds (sigma, data prediction) pairs; returns the new x and the model value at the
    predicted point (None without the corrector)."""
    s0, m0 = history[-1]
    alpha_t, std_t, lam_t = vp(sigma)
    _, std_0, lam_0 = vp(s0)
    h = lam_t - lam_0
    earlier = history[-order:-1][::-1]  # the point before last first
    rks = [(vp(s)[2] - lam_0) / h for s, _ in earlier]
    diffs = [(m - m0) / r for (_, m), r in zip(earlier, rks)]
    hh = -h
    big_r, b, big_b = system(torch.stack(rks + [torch.ones_like(h)]), hh, bh2)
    base = (std_t / std_0) * x - (alpha_t * torch.expm1(hh)) * m0
    x_t = base
    if diffs:
        rho_p = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(big_r[:-1, :-1], b[:-1])
        x_t = base - (alpha_t * big_b) * _weigh(diffs, rho_p)
    if not correct:
        return x_t, None
    m_t = model(x_t, sigma)
    rho_c = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(big_r, b)
    res = rho_c[-1].to(x.device) * (m_t - m0)
    if diffs:
        res = _weigh(diffs, rho_c[:-1]) + res
    return base - (alpha_t * big_b) * res, m_t


def unipc(model, x, sigmas, noise, step, bh2=False):
    if len(sigmas) < 2:
        return x
    ts = sigmas.clone()
    if ts[-1] == 0:
        ts[-1] = LAST_SIGMA
    steps, order = len(ts) - 1, min(3, len(ts) - 2)

    def predict_x0(x_vp, sigma):
        return model(x_vp * (sigma ** 2 + 1.0) ** 0.5, sigma)
    x = x / torch.sqrt(1.0 + ts[0] ** 2.0)
    if order < 1:  # a single step: ComfyUI's UniPC moves nothing, only rescales by the last alpha
        x = x / vp(ts[-1])[0]
        step(0, x)
        return x
    history = [(ts[0], predict_x0(x, ts[0]))]
    for s in range(1, steps + 1):
        last = s == steps
        x, m = update(predict_x0, x, history, ts[s], min(s, order, steps + 1 - s), not last, bh2)
        if not last:
            history = (history + [(ts[s], m)])[-order:]
        step(s - 1, x / vp(ts[s])[0])
    return x / vp(ts[-1])[0]


def uni_pc(model, x, sigmas, noise, step):
    return unipc(model, x, sigmas, noise, step, bh2=False)


def uni_pc_bh2(model, x, sigmas, noise, step):
    return unipc(model, x, sigmas, noise, step, bh2=True)
