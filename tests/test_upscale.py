"""Hires fix, latent and image upscaling, tiled VAE."""
import numpy as np
import pytest
import torch
from PIL import Image

import diffusers
from latentloom.app.core.validate import load
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
from latentloom.nodes import catalog
from tests.conftest import load_workflow

PROMPT, NEGATIVE, SEED = "a lighthouse", "blurry", 11


def pipeline(cls, tiny_dir, name):
    pipe = cls.from_pretrained(tiny_dir, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[name][0]).from_config(pipe.scheduler.config, **overrides(name))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("method", ["nearest-exact", "bicubic"])
def test_hires_fix_equals_txt2img_then_upscale_then_img2img(engine, tiny_dir, method):
    wf = load_workflow("hires_fix.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": PROMPT, "negative.text": NEGATIVE,
        "noise.seed": SEED, "latent.width": 64, "latent.height": 64, "sampler.steps": 3, "hires.steps": 4,
        "upscale.width": 96, "upscale.height": 96, "upscale.method": method})
    result = engine.run(wf)
    got = np.array(Image.open(result.outputs[0]))
    assert got.shape == (96, 96, 3)
    first = pipeline(diffusers.StableDiffusionPipeline, tiny_dir, "euler")
    latents = first(PROMPT, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=3,
                    guidance_scale=7.5, output_type="latent", generator=torch.Generator().manual_seed(SEED)).images
    kw = {} if method == "nearest-exact" else {"align_corners": False}
    big = torch.nn.functional.interpolate(latents, size=(12, 12), mode=method, **kw)
    second = pipeline(diffusers.StableDiffusionImg2ImgPipeline, tiny_dir, "euler")
    expected = second(PROMPT, image=big, strength=0.5, negative_prompt=NEGATIVE, num_inference_steps=4,
                      guidance_scale=7.5, generator=torch.Generator().manual_seed(SEED)).images[0]
    assert np.array_equal(got, np.array(expected))


def graph(nodes):
    return load({"format": "latentloom.workflow", "version": 1, "nodes": nodes}, catalog)


def upscaled(engine, **params):
    wf = graph({"latent": {"type": "EmptyLatent", "params": {"width": 64, "height": 48}},
                "up": {"type": "LatentUpscale", "params": params, "inputs": {"latent": ["latent", "latent"]}},
                "dec": {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": ["up", "latent"]}},
                "ckpt": {"type": "LoadCheckpoint", "params": {"path": str(engine.tiny), "dtype": "fp32"}},
                "save": {"type": "SaveImage", "inputs": {"image": ["dec", "image"]}}})
    return engine.run(wf).values["up"]["latent"]


@pytest.fixture
def tiny_engine(engine, tiny_dir):
    engine.tiny = tiny_dir
    return engine


@pytest.mark.parametrize("params,size", [
    (dict(width=0, height=0, scale=1.5), (72, 96)),     # 48x64 px * 1.5
    (dict(width=128, height=0, scale=1.0), (96, 128)),  # height keeps the aspect ratio
    (dict(width=0, height=24, scale=1.0), (24, 32)),
    (dict(width=40, height=80, scale=7.0), (80, 40)),   # both given: scale unused
])
def test_latent_upscale_sizes(tiny_engine, params, size):
    lat = upscaled(tiny_engine, method="bilinear", **params)
    assert tuple(lat.samples.shape[-2:]) == (size[0] // 8, size[1] // 8)


def test_latent_upscale_methods_are_torch_interpolation(tiny_engine):
    from latentloom.app.sd import upscale
    from latentloom.app.sd.handles import Latent
    x = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    mask = (torch.rand(1, 1, 6, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    for method in ("nearest-exact", "bilinear", "bicubic", "area"):
        kw = {} if method in ("nearest-exact", "area") else {"align_corners": False}
        out = upscale.latent(Latent(x, mask=mask), 128, 96, method)
        assert torch.equal(out.samples, torch.nn.functional.interpolate(x, size=(12, 16), mode=method, **kw))
        assert torch.equal(out.mask, torch.nn.functional.interpolate(mask, size=(12, 16), mode="nearest-exact"))


def bislerp_reference(x, width, height):
    """ComfyUI's bislerp (comfy/utils.py) pixel by pixel in float64: along the width, then the
    height, each new pixel lies at s = clamp((i + 0.5) * old / new - 0.5, 0, old - 1) (bilinear,
    no corner alignment) between source pixels floor(s) and min(floor(s) + 1, old - 1); their
    channel vectors a, b are slerped by r = s - floor(s) as unit vectors, then scaled by
    |a|(1 - r) + |b|r; a zero vector's unit vector is 0; a when dot > 1 - 1e-5; the linear blend
    when dot < 1e-5 - 1."""
    import math

    def where(old, new):
        out = []
        for i in range(new):
            s = min(max((i + 0.5) * old / new - 0.5, 0.0), old - 1)
            out.append((int(s), min(int(s) + 1, old - 1), s - int(s)))
        return out

    def slerp(a, b, r):
        na, nb = float(a.norm()), float(b.norm())
        ua = a / na if na else torch.zeros_like(a)
        ub = b / nb if nb else torch.zeros_like(b)
        dot = float((ua * ub).sum())
        if dot > 1 - 1e-5:
            return a
        if dot < 1e-5 - 1:
            return a * (1 - r) + b * r
        omega = math.acos(dot)
        return (math.sin((1 - r) * omega) * ua + math.sin(r * omega) * ub) / math.sin(omega) * (na * (1 - r) + nb * r)

    x = x.double()
    n, c, h, w = x.shape
    mid = torch.zeros(n, c, h, width, dtype=torch.float64)
    for j, (lo, hi, r) in enumerate(where(w, width)):
        for b in range(n):
            for y in range(h):
                mid[b, :, y, j] = slerp(x[b, :, y, lo], x[b, :, y, hi], r)
    out = torch.zeros(n, c, height, width, dtype=torch.float64)
    for i, (lo, hi, r) in enumerate(where(h, height)):
        for b in range(n):
            for xx in range(width):
                out[b, :, i, xx] = slerp(mid[b, :, lo, xx], mid[b, :, hi, xx], r)
    return out


@pytest.mark.parametrize("size", [(16, 12), (13, 9), (3, 5)])
def test_bislerp_is_comfyuis_formula(size):
    """Against the float64 reference: equal to float32 rounding (the source coordinates come from
    torch's float32 interpolation in ComfyUI and here). Zero vectors, vectors pointing the same way
    and opposite vectors take their own branches."""
    from latentloom.app.sd import upscale
    x = torch.randn(2, 4, 6, 8, generator=torch.Generator().manual_seed(3))
    x[:, :, 0, ::3] = 0                 # zero vectors
    x[:, :, 1, 1::2] = 2 * x[:, :, 1, 0::2]  # same direction
    x[:, :, 2, 1::2] = -x[:, :, 2, 0::2]     # opposite
    got = upscale.bislerp(x, *size)
    assert got.dtype == torch.float32 and got.shape == (2, 4, size[1], size[0])
    assert torch.allclose(got.double(), bislerp_reference(x, *size), rtol=0, atol=2e-5)
    assert not torch.allclose(got, torch.nn.functional.interpolate(x, size=size[::-1], mode="bilinear"), atol=1e-2)


def test_latent_upscale_bislerp_runs_on_the_latent_and_its_inpainting_parts(tiny_engine):
    from latentloom.app.sd import upscale
    from latentloom.app.sd.handles import Latent
    x = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    masked = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(2))
    mask = (torch.rand(1, 1, 6, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    out = upscale.latent(Latent(x, mask=mask, masked_image_latents=masked), 128, 96, "bislerp")
    assert torch.allclose(out.samples.double(), bislerp_reference(x, 16, 12), rtol=0, atol=2e-5)
    assert torch.allclose(out.masked_image_latents.double(), bislerp_reference(masked, 16, 12), rtol=0, atol=2e-5)
    assert torch.equal(out.mask, torch.nn.functional.interpolate(mask, size=(12, 16), mode="nearest-exact"))
    lat = upscaled(tiny_engine, method="bislerp", width=0, height=0, scale=2.0)
    assert lat.samples.shape[-2:] == (12, 16)
    img = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(4))
    got = upscale.image(img, 10, 9, "bislerp")
    assert torch.allclose(got.double(), bislerp_reference(img, 10, 9).clamp(0, 1), rtol=0, atol=2e-5)


def test_latent_upscale_size_must_be_a_multiple_of_8():
    from latentloom.app.core.workflow import WorkflowError
    with pytest.raises(WorkflowError) as info:
        graph({"latent": {"type": "EmptyLatent"},
               "up": {"type": "LatentUpscale", "params": {"width": 100}, "inputs": {"latent": ["latent", "latent"]}}})
    assert [str(p) for p in info.value.problems] == ["node 'up' param 'width': 100 is not a multiple of 8"]


def test_image_scale(engine, tmp_path):
    from latentloom.app.sd import masks
    path = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)).save(path)
    results = {}
    for method in ("lanczos", "bicubic", "area"):
        wf = graph({"img": {"type": "LoadImage", "params": {"path": str(path)}},
                    "sc": {"type": "ImageScale", "params": {"scale": 2.0, "method": method},
                           "inputs": {"image": ["img", "image"]}},
                    "save": {"type": "SaveImage", "inputs": {"image": ["sc", "image"]}}})
        r = engine.run(wf)
        results[method] = (r.values["img"]["image"], r.values["sc"]["image"])
    src, out = results["lanczos"]
    assert out.shape == (1, 3, 40, 60) and torch.equal(out, masks.resize(src, 60, 40, "lanczos"))
    src, out = results["bicubic"]
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, torch.nn.functional.interpolate(src, size=(40, 60), mode="bicubic").clamp(0, 1))
    assert torch.equal(results["area"][1], torch.nn.functional.interpolate(src, size=(40, 60), mode="area"))


@pytest.mark.parametrize("tiled", [False, True])
def test_tiled_vae_is_diffusers_enable_tiling(engine, tiny_dir, tiny_pipe, tmp_path, tiled):
    """The tiny VAE's sample_size is 64: images above 64 px (latents above 8) are tiled."""
    path = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(1).random((160, 128, 3)) * 255).astype(np.uint8)).save(path)
    wf = graph({"ckpt": {"type": "LoadCheckpoint", "params": {"path": str(tiny_dir), "dtype": "fp32"}},
                "img": {"type": "LoadImage", "params": {"path": str(path)}},
                "enc": {"type": "VAEEncode", "params": {"tiled": tiled},
                        "inputs": {"vae": ["ckpt", "vae"], "image": ["img", "image"]}},
                "dec": {"type": "VAEDecode", "params": {"tiled": tiled},
                        "inputs": {"vae": ["ckpt", "vae"], "latent": ["enc", "latent"]}},
                "save": {"type": "SaveImage", "inputs": {"image": ["dec", "image"]}}})
    r = engine.run(wf)
    vae, pixels = tiny_pipe.vae, r.values["img"]["image"] * 2 - 1
    with torch.no_grad():
        refs = {}
        for on in (False, True):
            vae.enable_tiling() if on else vae.disable_tiling()
            lat = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
            refs[on] = lat, (vae.decode(lat / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
        vae.disable_tiling()
    assert not torch.allclose(refs[False][1], refs[True][1], atol=1e-3)  # tiling matters at this size
    assert torch.equal(r.values["enc"]["latent"].samples, refs[tiled][0])
    assert torch.equal(r.values["dec"]["image"], refs[tiled][1])
