"""ComfyUI's uni_pc, uni_pc_bh2 and deis samplers against step-by-step computations here from the
published UniPC (Zhao et al. 2023) and DEIS tAB (Zhang & Chen 2022) formulas, in float64 numpy,
with the few float32 quantities ComfyUI computes that way; and end to end from an imported graph."""
import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.cli import main
from latentloom.app.sd.comfy import samplers, schedules
from latentloom.app.sd.comfy.handle import describe
from latentloom.app.sd.comfy.sample import sample
from latentloom.app.sd.handles import Latent
from tests.test_comfy_import import api_prompt
from tests.test_comfy_sampling import CONFIG, FakeUNet, cond


@pytest.fixture(scope="module")
def ms():
    return schedules.ModelSampling(CONFIG)


def toy(x, sigma):
    """An analytic denoiser whose predictions change with x and sigma (so history terms matter)."""
    return 0.5 / (1.0 + sigma) * x + 0.1 * np.tanh(np.arange(x.size).reshape(x.shape) / 7.0)


def torch_toy(x, sigma):
    return torch.from_numpy(toy(x.double().numpy(), float(sigma))).float()


def start(sigmas):
    noise = np.random.default_rng(3).standard_normal((1, 4, 4, 4))
    return noise * math.sqrt(1 + float(sigmas[0]) ** 2)


def ours(name, sigmas, x):
    seen = []
    out = samplers.SAMPLERS[name](torch_toy, torch.from_numpy(x).float(), sigmas, None,
                                  lambda i, cur: seen.append(i))
    assert seen == list(range(len(sigmas) - 1))  # one progress call per step
    return out.double().numpy()


# ---- UniPC ----

def vp32(sigma):
    """alpha, sigma_vp and lambda of sigma as ComfyUI derives them, in float32:
    log alpha = log(1 / (1 + sigma^2)) / 2, sigma_vp = sqrt(1 - alpha^2), lambda = log(alpha / sigma_vp)."""
    s = np.float32(sigma)
    log_a = np.float32(0.5) * np.log(np.float32(1) / (s * s + np.float32(1)))
    rest = np.float32(1) - np.exp(np.float32(2) * log_a)
    return float(np.exp(log_a)), float(np.sqrt(rest)), float(log_a - np.float32(0.5) * np.log(rest))


def phi(k, z):
    """phi_k(z) = (e^z - sum_{n<k} z^n / n!) / z^k."""
    return (math.exp(z) - sum(z ** n / math.factorial(n) for n in range(k))) / z ** k


def hand_unipc(sigmas, x, bh2):
    s = [float(v) for v in sigmas]
    s[-1] = s[-1] or 0.001  # a last sigma of 0 becomes 0.001
    vp = [vp32(v) for v in s]
    n, p = len(s) - 1, min(3, len(s) - 2)
    x = x / math.sqrt(1 + s[0] ** 2)
    x0 = lambda xv, i: toy(xv * math.sqrt(1 + s[i] ** 2), s[i])  # noqa: E731
    hist = [(0, x0(x, 0))]
    for i in range(1, n + 1):
        k = min(i, p, n + 1 - i)  # warm-up, then lower order at the end
        j0, m0 = hist[-1]
        h = vp[i][2] - vp[j0][2]
        z = -h  # data prediction
        prev = hist[-k:-1][::-1]
        r = [(vp[j][2] - vp[j0][2]) / h for j, _ in prev] + [1.0]
        d1 = [(m - m0) / rj for (_, m), rj in zip(prev, r)]
        big_b = math.expm1(z) if bh2 else z
        b = np.array([math.factorial(q) * z * phi(q + 1, z) / big_b for q in range(1, k + 1)])
        big_r = np.array([[rj ** (q - 1) for rj in r] for q in range(1, k + 1)])
        alpha_t = vp[i][0]
        base = vp[i][1] / vp[j0][1] * x - alpha_t * math.expm1(z) * m0
        rho_p = [] if k == 1 else [0.5] if k == 2 else np.linalg.solve(big_r[:-1, :-1], b[:-1])
        pred = base - alpha_t * big_b * sum(rho * d for rho, d in zip(rho_p, d1))
        if i == n:
            x = pred  # no corrector at the last step
            break
        m_t = x0(pred, i)
        rho_c = [0.5] if k == 1 else np.linalg.solve(big_r, b)
        x = base - alpha_t * big_b * (sum(rho * d for rho, d in zip(rho_c[:-1], d1)) + rho_c[-1] * (m_t - m0))
        hist = (hist + [(i, m_t)])[-p:]
    return x / vp[-1][0]


@pytest.mark.parametrize("name", ["uni_pc", "uni_pc_bh2"])
@pytest.mark.parametrize("scheduler,steps", [("karras", 2), ("karras", 3), ("karras", 6), ("normal", 5)])
def test_uni_pc_follows_the_published_predictor_corrector(ms, name, scheduler, steps):
    sigmas = schedules.sigmas_for(ms, scheduler, name, steps)
    x = start(sigmas)
    expected = hand_unipc(sigmas, x, bh2=name == "uni_pc_bh2")
    np.testing.assert_allclose(ours(name, sigmas, x), expected, rtol=2e-5, atol=2e-5)


def test_uni_pc_with_leftover_noise_stops_at_the_last_sigma(ms):
    sigmas = schedules.sigmas_for(ms, "karras", "uni_pc", 8)[:-3]  # ends above 0: no 0.001
    x = start(sigmas)
    np.testing.assert_allclose(ours("uni_pc", sigmas, x), hand_unipc(sigmas, x, False), rtol=2e-5, atol=2e-5)


def test_uni_pc_and_bh2_differ_and_both_drop_the_penultimate_sigma(ms):
    five = schedules.schedule(ms, "karras", 5)
    for name in ("uni_pc", "uni_pc_bh2"):
        assert torch.equal(schedules.sigmas_for(ms, "karras", name, 4), torch.cat([five[:-2], five[-1:]]))
    sigmas = schedules.sigmas_for(ms, "karras", "uni_pc", 6)
    x = start(sigmas)
    assert np.abs(ours("uni_pc", sigmas, x) - ours("uni_pc_bh2", sigmas, x)).max() > 1e-3


def test_uni_pc_runs_a_constant_denoiser_to_sigma_0001_not_0(ms):
    # With denoised = c everywhere the exponential integrator is exact: x(sigma) = c + sigma/sigma0 (x0 - c),
    # so the result keeps 0.001/sigma0 of the start's distance from c (float32 lambda: within 3%).
    sigmas = schedules.sigmas_for(ms, "karras", "uni_pc", 5)
    x = torch.from_numpy(start(sigmas)).float()
    c = torch.full_like(x, 0.25)
    out = samplers.SAMPLERS["uni_pc"](lambda xx, s: c, x, sigmas, None, lambda i, cur: None)
    torch.testing.assert_close(out - c, (x - c) * 0.001 / sigmas[0], rtol=0.03, atol=1e-6)
    assert (out - c).abs().max() > 1e-4


def test_one_step_uni_pc_only_rescales_to_the_last_alpha(ms):
    sigmas = schedules.sigmas_for(ms, "karras", "uni_pc", 1)  # [sigma_max, 0]
    x = start(sigmas)
    expected = x / math.sqrt(1 + float(sigmas[0]) ** 2) / vp32(0.001)[0]
    np.testing.assert_allclose(ours("uni_pc", sigmas, x), expected, rtol=1e-6)


def test_uni_pc_calls_the_model_once_per_step_never_at_the_end(ms):
    unet = FakeUNet(0.1)
    handle = describe("uni_pc", "karras", CONFIG)
    sample(unet, cond(), cond(), Latent(torch.zeros(1, 4, 8, 8), empty=True), 5, handle, 4, 1.0, 1.0)
    sigmas = schedules.sigmas_for(ms, "karras", "uni_pc", 4)
    # the U-Net sees each sigma's integer timestep except the last (0 -> 0.001 is never evaluated)
    assert [int(t[0]) for _, t, _ in unet.calls] == [int(ms.timestep(s)) for s in sigmas[:-1]]


# ---- DEIS ----

def hand_deis_coefficients(sigmas):
    """VP time t(sigma) on EDM's range (sigma 0.002 at t = 1e-3, 80 at t = 1), and per step the
    Lagrange-basis integrals of dsigma/dt, summed over 10000 points (both ends) times dt / 10000."""
    eps_t = 1e-3
    lmin, lmax = float(np.log(np.float32(0.002) ** 2 + np.float32(1))), math.log(80.0 ** 2 + 1)  # float32, as ComfyUI
    bd = 2 * (lmin / eps_t - lmax) / (eps_t - 1)
    bmin = lmax - 0.5 * bd
    t = [(math.sqrt(bmin ** 2 + 2 * bd * math.log(1 + float(s) ** 2)) - bmin) / bd for s in sigmas]

    def dsigma(tau):  # sigma(tau) = sqrt(exp(bd tau^2 / 2 + bmin tau) - 1)
        e = np.exp(0.5 * bd * tau ** 2 + bmin * tau)
        return (bd * tau + bmin) * e / (2 * np.sqrt(e - 1))

    out = []
    for i in range(len(sigmas) - 1):
        k = min(3, i + 1)
        if k == 1 or float(sigmas[i + 1]) == 0:
            out.append(None)
            continue
        tau = np.linspace(t[i], t[i + 1], 10000)
        nodes = [t[i - j] for j in range(k)]
        basis = [np.prod([(tau - nodes[m]) / (nodes[j] - nodes[m]) for m in range(k) if m != j], axis=0)
                 for j in range(k)]
        out.append([float(np.sum(dsigma(tau) * lj) * (t[i + 1] - t[i]) / 10000) for lj in basis])
    return out


def hand_deis(sigmas, x):
    s = [float(v) for v in sigmas]
    coeffs, eps_hist = hand_deis_coefficients(sigmas), []
    for i in range(len(s) - 1):
        eps = (x - toy(x, s[i])) / s[i]
        if coeffs[i] is None:
            x = x + (s[i + 1] - s[i]) * eps  # Euler: the first step and any step to sigma 0
        else:
            x = x + sum(c * e for c, e in zip(coeffs[i], [eps] + eps_hist[::-1]))
        eps_hist = (eps_hist + [eps])[-2:]
    return x


@pytest.mark.parametrize("scheduler,steps", [("karras", 2), ("karras", 6), ("normal", 5)])
def test_deis_follows_the_published_tab_integrals(ms, scheduler, steps):
    sigmas = schedules.sigmas_for(ms, scheduler, "deis", steps)
    x = start(sigmas)
    np.testing.assert_allclose(ours("deis", sigmas, x), hand_deis(sigmas, x), rtol=1e-4, atol=1e-4)


def test_deis_with_leftover_noise_uses_the_polynomial_on_the_last_step(ms):
    sigmas = schedules.sigmas_for(ms, "karras", "deis", 8)[:-3]
    x = start(sigmas)
    assert hand_deis_coefficients(sigmas)[-1] is not None
    np.testing.assert_allclose(ours("deis", sigmas, x), hand_deis(sigmas, x), rtol=1e-4, atol=1e-4)


def test_deis_coefficients_integrate_to_the_sigma_step(ms):
    # The Lagrange basis sums to 1, so each step's coefficients add up to sigma_next - sigma (the t map is
    # EDM's, but it is inverted consistently); the 10000-point sum is accurate to about 1e-4.
    sigmas = schedules.sigmas_for(ms, "karras", "deis", 6)
    for i, c in enumerate(hand_deis_coefficients(sigmas)):
        if c is not None:
            assert sum(c) == pytest.approx(float(sigmas[i + 1] - sigmas[i]), rel=1e-3)


# ---- end to end ----

def test_imported_graphs_run_each_new_sampler_to_a_different_png(tmp_path, tiny_dir):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "tiny").symlink_to(tiny_dir)
    paths = []
    for name in ("uni_pc", "uni_pc_bh2", "deis"):
        p = copy.deepcopy(api_prompt())
        p["3"]["inputs"].update(sampler_name=name, scheduler="karras", steps=4)
        p["9"]["inputs"]["filename_prefix"] = name
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(p))
    report = tmp_path / "report.json"
    assert main(["run", *map(str, paths), "--models", str(models), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--quiet", "--report", str(report)]) == 0
    runs = json.loads(report.read_text())["runs"]
    assert [len(r["outputs"]) for r in runs] == [1, 1, 1]
    images = [np.array(Image.open(r["outputs"][0])) for r in runs]
    assert all(im.shape == (64, 64, 3) for im in images)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(images[a], images[b]), (a, b)
