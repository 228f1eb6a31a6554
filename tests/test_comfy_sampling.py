"""ComfyUI-compatible sampling, piece by piece, against values computed here from ComfyUI's
published formulas (numpy, float64 where ComfyUI uses it)."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from latentloom.app.sd.comfy import samplers, schedules
from latentloom.app.sd.comfy.handle import describe
from latentloom.app.sd.comfy.images import crop_offsets, inpaint_pixels, to_pil_truncated
from latentloom.app.sd.comfy.sample import BrownianNoise, sample
from latentloom.app.sd.handles import Conditioning, Latent

CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def hand_sigmas():
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    ac = np.cumprod(1.0 - betas)
    return np.sqrt((1 - ac) / ac)


@pytest.fixture(scope="module")
def ms():
    return schedules.ModelSampling(CONFIG)


def test_betas_are_float64_then_sigmas_float32(ms):
    s = hand_sigmas()
    assert torch.equal(ms.sigmas, torch.from_numpy(s).float())
    assert torch.equal(ms.log_sigmas, torch.from_numpy(np.log(s)).float())
    # float32 betas would give other sigmas: the float64 path matters
    b32 = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2
    ac32 = torch.cumprod(1 - b32, 0)
    assert not torch.equal(((1 - ac32) / ac32) ** 0.5, ms.sigmas)


def test_timestep_is_the_nearest_integer_in_log_space(ms):
    s = hand_sigmas()
    for t in (0, 1, 250, 999):
        assert int(ms.timestep(torch.tensor(float(s[t])))) == t
    between = math.exp((math.log(s[500]) * 0.7 + math.log(s[501]) * 0.3))
    assert int(ms.timestep(torch.tensor(between))) == 500
    assert float(ms.sigma(torch.tensor(500.25))) == pytest.approx(
        math.exp(0.75 * math.log(s[500]) + 0.25 * math.log(s[501])), rel=1e-6)


def f32(values):
    return torch.tensor(np.array(values, dtype=np.float64)).float()


def test_normal_schedule_interpolates_log_sigma(ms):
    s = hand_sigmas()
    ts = np.linspace(999, 0, 4)  # [999, 666, 333, 0]: integers, so the training sigmas
    assert torch.allclose(schedules.schedule(ms, "normal", 4), f32([s[int(t)] for t in ts] + [0.0]), rtol=1e-6)


def test_sgm_uniform_drops_the_last_timestep(ms):
    s = hand_sigmas()
    expected = []
    for t in np.linspace(999, 0, 5)[:-1]:
        lo, hi, w = int(np.floor(t)), int(np.ceil(t)), t - np.floor(t)
        expected.append(math.exp((1 - w) * math.log(s[lo]) + w * math.log(s[hi])))
    assert torch.allclose(schedules.schedule(ms, "sgm_uniform", 4), f32(expected + [0.0]), rtol=1e-5)


def test_karras_and_exponential_use_the_models_sigma_range(ms):
    s = hand_sigmas()
    lo, hi = float(np.float32(s[0])), float(np.float32(s[-1]))
    ramp = np.linspace(0, 1, 5)
    karras = (hi ** (1 / 7) + ramp * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7
    assert torch.allclose(schedules.schedule(ms, "karras", 5), f32(list(karras) + [0.0]), rtol=1e-5)
    expo = np.exp(np.linspace(math.log(hi), math.log(lo), 5))
    assert torch.allclose(schedules.schedule(ms, "exponential", 5), f32(list(expo) + [0.0]), rtol=1e-5)


def test_simple_is_floor_indexed(ms):
    s = hand_sigmas()  # 1000 / 4 = 250: sigmas[-1], [-251], [-501], [-751]
    assert torch.equal(schedules.schedule(ms, "simple", 4), f32([s[999], s[749], s[499], s[249], 0.0]))
    # a stride that is not an integer: int(x * 1000 / 3)
    assert torch.equal(schedules.schedule(ms, "simple", 3), f32([s[999], s[666], s[333], 0.0]))


def test_ddim_uniform(ms):
    s = hand_sigmas()  # from index 1 in strides of 250, reversed, with 0 at the end
    assert torch.equal(schedules.schedule(ms, "ddim_uniform", 4), f32([s[751], s[501], s[251], s[1], 0.0]))


def test_beta_schedule_is_quantile_timestep_sigma(ms):
    s = hand_sigmas()
    ts = np.rint(scipy.stats.beta.ppf(1 - np.linspace(0, 1, 6, endpoint=False), 0.6, 0.6) * 999)
    expected = [s[int(t)] for i, t in enumerate(ts) if i == 0 or t != ts[i - 1]]
    assert torch.equal(schedules.schedule(ms, "beta", 6), f32(expected + [0.0]))
    assert int(ts[0]) == 999


def test_denoise_builds_more_steps_and_keeps_the_last(ms):
    full = schedules.schedule(ms, "normal", 8)  # int(4 / 0.5)
    assert torch.equal(schedules.sigmas_for(ms, "normal", "euler", 4, 0.5), full[-5:])
    seven = schedules.schedule(ms, "karras", int(3 / 0.45))  # int(6.67) = 6
    assert torch.equal(schedules.sigmas_for(ms, "karras", "euler", 3, 0.45), seven[-4:])


def test_some_samplers_drop_the_penultimate_sigma(ms):
    five = schedules.schedule(ms, "normal", 5)
    expected = torch.cat([five[:-2], five[-1:]])
    for name in ("dpm_2", "dpm_2_ancestral"):
        assert torch.equal(schedules.sigmas_for(ms, "normal", name, 4), expected)
    assert torch.equal(schedules.sigmas_for(ms, "normal", "euler", 4), schedules.schedule(ms, "normal", 4))


class FakeUNet(torch.nn.Module):
    """Predicts eps = scale * input; records what it was called with."""

    def __init__(self, scale=0.0, channels=4):
        super().__init__()
        self.scale = scale
        self.config = type("C", (), {"in_channels": channels})()
        self.calls = []
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def forward(self, x, t, encoder_hidden_states=None, return_dict=False):
        self.calls.append((x.clone(), t.clone(), encoder_hidden_states.shape[0]))
        return (x * self.scale,)


def cond(n=1):
    return Conditioning(torch.zeros(1, 77 * n, 8), None)


def run(unet, latent, sampler="euler", scheduler="normal", steps=3, cfg=7.0, denoise=1.0, seed=5, **adv):
    handle = describe(sampler, scheduler, CONFIG, **adv)
    return sample(unet, cond(), cond(), latent, seed, handle, steps, cfg, denoise)


def test_initial_noise_is_cpu_randn_scaled_by_sqrt_one_plus_sigma_max_squared(ms):
    empty = Latent(torch.zeros(2, 4, 8, 8), empty=True)
    out = run(FakeUNet(0.0), empty)  # eps 0: Euler keeps x, so the result is the initial x
    noise = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    sigma0 = schedules.schedule(ms, "normal", 3)[0]
    assert torch.equal(out, noise * torch.sqrt(1.0 + sigma0 ** 2.0))


def test_later_start_scales_the_noise_by_sigma_and_adds_the_latent(ms):
    image = torch.full((1, 4, 8, 8), 0.25)
    out = run(FakeUNet(0.0), Latent(image), denoise=0.5)
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    sigma0 = schedules.sigmas_for(ms, "normal", "euler", 3, 0.5)[0]
    assert torch.equal(out, noise * sigma0 + image)


def test_unet_sees_scaled_input_and_integer_timesteps_and_cfg_1_skips_uncond(ms):
    unet = FakeUNet(0.0)
    run(unet, Latent(torch.zeros(1, 4, 8, 8), empty=True), cfg=1.0, steps=4)
    assert [int(t[0]) for _, t, _ in unet.calls] == [999, 666, 333, 0]
    assert all(float(t[0]).is_integer() for _, t, _ in unet.calls)
    assert [b for _, _, b in unet.calls] == [1, 1, 1, 1]  # no unconditional pass
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    sigma0 = schedules.schedule(ms, "normal", 4)[0]
    x0 = noise * torch.sqrt(1.0 + sigma0 ** 2.0)
    assert torch.equal(unet.calls[0][0], x0 / (sigma0 ** 2 + 1.0) ** 0.5)
    unet = FakeUNet(0.0)
    run(unet, Latent(torch.zeros(1, 4, 8, 8), empty=True), cfg=7.0, steps=2)
    assert [b for _, _, b in unet.calls] == [2, 2]


def test_euler_step_and_cfg_on_denoised(ms):
    unet = FakeUNet(0.5)  # eps = 0.5 * model input: cond and uncond agree, so cfg is neutral
    out = run(unet, Latent(torch.zeros(1, 4, 8, 8), empty=True), steps=2, cfg=3.0)
    sig = schedules.schedule(ms, "normal", 2)
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5)) * torch.sqrt(1.0 + sig[0] ** 2.0)
    for i in range(2):
        eps = (x / (sig[i] ** 2 + 1.0) ** 0.5) * 0.5
        denoised = x - eps * sig[i]
        denoised = denoised + (denoised - denoised) * 3.0
        x = x + (x - denoised) / sig[i] * (sig[i + 1] - sig[i])
    assert torch.allclose(out, x, rtol=1e-6, atol=1e-6)


def test_ancestral_noise_comes_from_a_fresh_generator_seeded_with_the_seed(ms):
    out = run(FakeUNet(0.0), Latent(torch.zeros(1, 4, 8, 8), empty=True), sampler="euler_ancestral", steps=1)
    # one step to sigma 0: the result is the denoised x (eps 0: x itself)
    sig = schedules.schedule(ms, "normal", 1)
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, noise * torch.sqrt(1.0 + sig[0] ** 2.0))
    out = run(FakeUNet(0.0), Latent(torch.zeros(1, 4, 8, 8), empty=True), sampler="euler_ancestral", steps=2)
    sig = schedules.schedule(ms, "normal", 2)
    g = torch.Generator().manual_seed(5)
    x = torch.randn((1, 4, 8, 8), generator=g) * torch.sqrt(1.0 + sig[0] ** 2.0)
    up = min(sig[1], (sig[1] ** 2 * (sig[0] ** 2 - sig[1] ** 2) / sig[0] ** 2) ** 0.5)
    step_noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))  # fresh, not continued
    x = x + step_noise * up
    assert torch.allclose(out, x, rtol=1e-6, atol=1e-6)


def test_brownian_noise_is_a_torchsde_tree_seeded_with_the_seed():
    import torchsde
    x = torch.zeros(1, 4, 4, 4)
    lo, hi = torch.tensor(0.03), torch.tensor(14.6)
    ours = BrownianNoise(x, lo, hi, 123)
    tree = torchsde.BrownianTree(lo, torch.zeros_like(x), hi, entropy=123)
    a, b = torch.tensor(5.0), torch.tensor(3.0)
    expected = tree(b, a) * -1 / (b - a).abs().sqrt()
    assert torch.equal(ours(a, b), expected)
    assert torch.equal(BrownianNoise(x, lo, hi, 123)(a, b), ours(a, b))


def test_advanced_window_and_leftover_noise(ms):
    unet = FakeUNet(0.0)
    run(unet, Latent(torch.zeros(1, 4, 8, 8), empty=True), steps=4, cfg=1.0, start_at_step=1, end_at_step=3,
        return_with_leftover_noise=True, add_noise=False)
    assert [int(t[0]) for _, t, _ in unet.calls] == [666, 333]
    out = run(FakeUNet(0.0), Latent(torch.full((1, 4, 8, 8), 0.5)), steps=4, cfg=1.0, start_at_step=2, add_noise=False)
    assert torch.equal(out, torch.full((1, 4, 8, 8), 0.5))  # no noise added, eps 0


def test_every_named_sampler_runs():
    from latentloom.app.sd import comfy
    assert set(comfy.SAMPLERS) == set(samplers.SAMPLERS)
    for name in comfy.SAMPLERS:
        latent = Latent(torch.zeros(1, 4, 8, 8), empty=True)
        out = run(FakeUNet(0.1), latent, sampler=name, scheduler="karras", steps=3)
        assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all(), name


def test_noise_mask_keeps_the_original_outside(ms):
    image = torch.full((1, 4, 8, 8), 0.3)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1.0
    out = run(FakeUNet(0.2), Latent(image, mask=mask), steps=3, denoise=0.6)
    assert torch.equal(out[..., 4:], image[..., 4:])
    assert not torch.equal(out[..., :4], image[..., :4])


def test_eight_bit_conversion_truncates():
    image = torch.tensor([0.999, 0.5, 0.0019, 1.2]).reshape(1, 1, 1, 4).repeat(1, 3, 1, 1)
    assert list(np.array(to_pil_truncated(image)[0])[0, :, 0]) == [254, 127, 0, 255]


def test_vae_encode_crops_the_centre_and_inpaint_greys_and_grows():
    assert crop_offsets(67, 70) == (1, 3, 64, 64)
    image = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 6:8, 6:8] = 1.0
    pixels, noise_mask = inpaint_pixels(image, mask, 3)
    assert torch.equal(pixels[..., 6:8, 6:8], torch.full((1, 3, 2, 2), 0.5))
    assert torch.equal(pixels[..., :6, :], image[..., :6, :])
    grown = torch.zeros(1, 1, 16, 16)
    grown[..., 5:9, 5:9] = 1.0  # a 3x3 ones kernel grows the square by one pixel each way
    assert torch.equal(noise_mask, grown)
