"""ControlNet and RescaleCFG in ComfyUI sampling, checked against ComfyUI's formulas written out here."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.sd.comfy import schedules
from latentloom.app.sd.comfy.control import ComfyControlGuide, batched, hint_image
from latentloom.app.sd.comfy.handle import describe
from latentloom.app.sd.comfy.sample import rescale_cfg, sample
from latentloom.app.sd.controlnet import ControlSpec
from latentloom.app.sd.handles import Conditioning, Latent
from latentloom.app.session import Session
from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS
from tests.support.controlnets import tiny_controlnet
from tests.test_controlnet import nets, tiny_reference  # noqa: F401  (fixtures)

CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


@pytest.fixture(scope="module")
def ms():
    return schedules.ModelSampling(CONFIG)


def test_percent_to_sigma_interpolates_the_training_sigmas(ms):
    assert ms.percent_to_sigma(0.0) == 999999999.9 and ms.percent_to_sigma(1.0) == 0.0
    t = 0.7 * 999.0  # 30% of the way: timestep 699.3
    lo, hi = int(t), int(t) + 1
    w = torch.tensor(t, dtype=torch.float32) - lo
    expected = ((1 - w) * ms.log_sigmas[lo] + w * ms.log_sigmas[hi]).exp().item()
    assert ms.percent_to_sigma(0.3) == expected


def test_hint_is_centre_cropped_to_the_aspect_then_nearest_exact():
    image = torch.rand(1, 3, 48, 80)
    hint = hint_image(image, 64, 64)
    # 80x48 to a square: round((80 - 80 * 0.6) / 2) = 16 columns off each side, then 48 -> 64
    square = image[..., :, 16:64]
    idx = [int((j + 0.5) * 48 / 64) for j in range(64)]
    assert torch.equal(hint, square[..., idx, :][..., :, idx])


def test_hint_batches_broadcast_as_comfyui():
    one, three = torch.zeros(1, 3, 8, 8), torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 3, 8, 8)
    assert batched(one, 4, 2) is one
    out = batched(three, 4, 2)  # a batch of 2 latents, CFG halves: hints 0, 1 then 0, 1
    assert [float(v) for v in out[:, 0, 0, 0]] == [0, 1, 0, 1]
    assert [float(v) for v in batched(three, 4, 1)[:, 0, 0, 0]] == [0, 1, 2, 0]


class RecordingUNet(torch.nn.Module):
    """eps = 0.1 * input + the mid residual's mean; records the sigma-window decisions."""

    def __init__(self):
        super().__init__()
        self.config = type("C", (), {"in_channels": 4})()
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.calls = []

    def forward(self, x, t, encoder_hidden_states=None, return_dict=False, **kw):
        self.calls.append("mid_block_additional_residual" in kw)
        return (x * 0.1,)


class RecordingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.config = {"in_channels": 4}
        self.dtype = torch.float32
        self.seen = []

    def forward(self, x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
        self.seen.append((x.shape[0], controlnet_cond.shape, conditioning_scale))
        return [torch.zeros_like(x)], torch.zeros_like(x)


def cond():
    return Conditioning(torch.zeros(1, 77, 8), None)


def test_control_acts_inside_its_sigma_window_at_every_model_call(ms):
    unet, net = RecordingUNet(), RecordingNet()
    spec = ControlSpec(None, torch.rand(1, 3, 64, 64), 0.6, 0.3, 0.7)
    window = (ms.percent_to_sigma(0.3), ms.percent_to_sigma(0.7))
    guide = ComfyControlGuide(net, spec, hint_image(spec.image, 64, 64), None, window, 1)
    handle = describe("heun", "karras", CONFIG)
    sample(unet, cond(), cond(), Latent(torch.zeros(1, 4, 8, 8), empty=True), 3, handle, 6, 5.0, 1.0, guides=[guide])
    sigmas = schedules.sigmas_for(ms, "karras", "heun", 6)
    called_at = []  # heun: one call per step, a second one unless the next sigma is 0
    for i in range(6):
        called_at.append(float(sigmas[i]))
        if sigmas[i + 1] > 0:
            called_at.append(float(sigmas[i + 1]))
    expected = [window[1] <= s <= window[0] for s in called_at]
    assert unet.calls == expected and any(expected) and not all(expected)
    assert {seen for seen in net.seen} == {(2, (1, 3, 64, 64), 0.6)}  # cond and uncond in one batch


def reference_euler(unet, net, pos, neg, hint, seed, steps, cfg, strength, ms):
    """ComfyUI's KSampler (euler, normal) with a ControlNet on both halves, written out."""
    sig = schedules.schedule(ms, "normal", steps)
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(seed)) * torch.sqrt(1.0 + sig[0] ** 2.0)
    emb = torch.cat([pos, neg])
    for i in range(steps):
        s = sig[i]
        xin = torch.cat([x, x]) / (s ** 2 + 1.0) ** 0.5
        t = torch.argmin((s.log() - ms.log_sigmas).abs()).float().expand(2)
        down, mid = net(xin, t, encoder_hidden_states=emb, controlnet_cond=hint, conditioning_scale=strength,
                        return_dict=False)
        eps = unet(xin, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                   mid_block_additional_residual=mid).sample
        c, u = (x - e * s for e in eps.chunk(2))
        denoised = u + (c - u) * cfg
        x = x + (x - denoised) / s * (sig[i + 1] - s)
    return x


def test_controlnet_on_the_tiny_unet_matches_the_written_out_loop(tiny_pipe, ms):
    unet, net = tiny_pipe.unet, tiny_controlnet(tiny_pipe.unet, 4)
    gen = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(1, 77, 32, generator=gen), torch.randn(1, 77, 32, generator=gen)
    image = torch.rand(1, 3, 40, 72, generator=gen)
    spec = ControlSpec(None, image, 0.8, 0.0, 1.0)
    guide = ComfyControlGuide(net, spec, hint_image(image, 64, 64), None, (ms.percent_to_sigma(0.0), 0.0), 1)
    with torch.no_grad():
        ours = sample(unet, Conditioning(pos, None), Conditioning(neg, None), Latent(torch.zeros(1, 4, 8, 8), empty=True),
                      11, describe("euler", "normal", CONFIG), 3, 4.0, 1.0, guides=[guide])
        expected = reference_euler(unet, net, pos, neg, hint_image(image, 64, 64), 11, 3, 4.0, 0.8, ms)
        plain = sample(unet, Conditioning(pos, None), Conditioning(neg, None), Latent(torch.zeros(1, 4, 8, 8), empty=True),
                       11, describe("euler", "normal", CONFIG), 3, 4.0, 1.0)
    assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-5)
    assert (ours - plain).abs().max() > 1e-2  # the control changed the result


def test_rescale_cfg_is_comfyuis_v_space_formula():
    gen = torch.Generator().manual_seed(3)
    x, c, u = (torch.randn(2, 4, 8, 8, generator=gen) for _ in range(3))
    sigma, cfg, m = torch.tensor(2.5), 6.0, 0.7
    # v = alpha * eps - sigma_t * x0 with alpha = 1 / sqrt(1 + sigma^2), sigma_t = sigma * alpha, x_t = x * alpha
    alpha = 1 / (1 + sigma ** 2) ** 0.5
    xt = x * alpha
    eps_c, eps_u = (x - c) / sigma, (x - u) / sigma
    v_c, v_u = alpha * eps_c - sigma * alpha * c, alpha * eps_u - sigma * alpha * u
    v_cfg = v_u + cfg * (v_c - v_u)
    v = m * v_cfg * v_c.std(dim=(1, 2, 3), keepdim=True) / v_cfg.std(dim=(1, 2, 3), keepdim=True) + (1 - m) * v_cfg
    x0 = alpha * xt - sigma * alpha * v
    assert torch.allclose(rescale_cfg(x, sigma, c, u, cfg, m), x0, rtol=1e-4, atol=1e-4)
    plain = u + (c - u) * cfg
    assert torch.allclose(rescale_cfg(x, sigma, c, u, cfg, 0.0), plain, rtol=1e-4, atol=1e-4)


def api_prompt(cn_name, rescale=None, start=0.0, end=1.0):
    p = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "40": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": cn_name}},
        "41": {"class_type": "LoadImage", "inputs": {"image": "edges.png"}},
        "42": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["6", 0], "negative": ["7", 0], "control_net": ["40", 0], "image": ["41", 0],
            "strength": 0.8, "start_percent": start, "end_percent": end}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 5, "steps": 3, "cfg": 6.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0,
            "model": ["4", 0], "positive": ["42", 0], "negative": ["42", 1], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "cn", "images": ["8", 0]}},
    }
    if rescale is not None:
        p["50"] = {"class_type": "RescaleCFG", "inputs": {"model": ["4", 0], "multiplier": rescale}}
        p["3"]["inputs"]["model"] = ["50", 0]
    return p


@pytest.fixture
def comfy_folders(tmp_path, tiny_dir, nets):  # noqa: F811
    models = tmp_path / "ComfyUI" / "models"
    for sub, target in (("checkpoints/tiny", tiny_dir), ("controlnet/tiny-cn", nets[0])):
        (models / sub).parent.mkdir(parents=True, exist_ok=True)
        (models / sub).symlink_to(target)
    (tmp_path / "ComfyUI" / "input").mkdir()
    Image.open(WORKFLOWS / "inputs" / "landscape.png").convert("RGB").resize((96, 64)).save(
        tmp_path / "ComfyUI" / "input" / "edges.png")
    return models


def render(tmp_path, models, prompt, name):
    session = Session(catalog, models_dirs=[models], output_dir=tmp_path / "out", device="cpu")
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(prompt))
    result = session.run(session.prepare(session.open(path)))
    return np.array(Image.open(result.outputs[0])), result


def test_imported_controlnet_graph_runs_in_comfyui_sampling(tmp_path, comfy_folders):
    """The ComfyUI graph equals our own graph built by hand; the control and its window matter."""
    ours, result = render(tmp_path, comfy_folders, api_prompt("tiny-cn"), "cn")
    by_hand = api_prompt("tiny-cn")
    del by_hand["42"]
    by_hand["3"]["inputs"]["positive"], by_hand["3"]["inputs"]["negative"] = ["6", 0], ["7", 0]
    plain, _ = render(tmp_path, comfy_folders, by_hand, "plain")
    late, _ = render(tmp_path, comfy_folders, api_prompt("tiny-cn", start=0.5), "late")
    never, _ = render(tmp_path, comfy_folders, api_prompt("tiny-cn", start=1.0, end=1.0), "never")
    assert not np.array_equal(ours, plain) and not np.array_equal(late, ours) and not np.array_equal(late, plain)
    assert np.array_equal(never, plain)  # a window past the last sigma: no control at all


def test_rescale_cfg_maps_onto_guidance_rescale_and_back(tmp_path, comfy_folders):
    from latentloom.app.formats.comfy_export import to_prompt
    from latentloom.app.formats.comfy_import import to_document
    from latentloom.app.core.validate import load
    doc = to_document(api_prompt("tiny-cn", rescale=0.7))
    assert doc["nodes"]["3"]["params"]["guidance_rescale"] == 0.7
    assert doc["nodes"]["3"]["inputs"]["model"] == ["4", "model"] and "50" not in doc["nodes"]
    prompt, notes = to_prompt(load(doc, catalog))
    assert prompt["3.rescale"] == {"class_type": "RescaleCFG", "inputs": {"model": ["4", 0], "multiplier": 0.7}}
    assert prompt["3"]["inputs"]["model"] == ["3.rescale", 0] and notes == []
    assert to_document(prompt)["nodes"]["3"] == doc["nodes"]["3"]
    rescaled, _ = render(tmp_path, comfy_folders, api_prompt("tiny-cn", rescale=0.7), "rescaled")
    plain, _ = render(tmp_path, comfy_folders, api_prompt("tiny-cn"), "plain")
    assert not np.array_equal(rescaled, plain)


def test_rescale_cfg_multiplier_is_checked():
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.formats.comfy_import import to_document
    with pytest.raises(WorkflowError) as err:
        to_document(api_prompt("tiny-cn", rescale="lots"))
    assert "node '50' input 'multiplier': expected a number from 0 to 1, got 'lots'" in str(err.value)
