"""Import gaps closed: crop "center" on the scaling nodes, the old ControlNetApply and
DiffControlNetLoader, InpaintModelConditioning noise_mask false, embedding:NAME in ComfyUI prompts,
and the A1111 hires pass. Pixels are checked against hand computations, graphs node by node."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.core.validate import check, load
from latentloom.app.session import Session, open_document
from latentloom.nodes import catalog
from tests.test_comfy_import import api_prompt

F = torch.nn.functional


def mapped(prompt, tmp_path):
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt))
    doc = open_document(path).data
    assert check(doc, catalog)[1] == []
    return {nid: {k: v for k, v in n.items() if k != "ui"} for nid, n in doc["nodes"].items()}


def graph(nodes):
    return load({"format": "latentloom.workflow", "version": 2, "nodes": nodes}, catalog)


def noise_png(path, width, height, seed=0):
    Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)).save(path)
    return path


# -- crop "center" ----------------------------------------------------------------------------
def test_comfyui_image_scale_with_centre_crop_renders_comfyuis_formula(tmp_path):
    """37x20 -> 24x16: the source is wider (1.85 > 1.5), so round((37 - 37 * 1.5 / 1.85) / 2) =
    round(3.5) = 4 columns go from each side, then bilinear to 24x16, 8 bits by truncation."""
    root = tmp_path / "ComfyUI"
    (root / "models").mkdir(parents=True)
    (root / "input").mkdir()
    src = noise_png(root / "input" / "src.png", 37, 20)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "src.png"}},
              "2": {"class_type": "ImageScale", "inputs": {"upscale_method": "bilinear", "width": 24, "height": 16,
                                                           "crop": "center", "image": ["1", 0]}},
              "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 0]}}}
    assert mapped(prompt, tmp_path)["2"] == {"type": "ImageScale", "params": {
        "method": "bilinear", "width": 24, "height": 16, "crop": "center", "pixels": "comfyui"},
        "inputs": {"image": ["1", "image"]}}
    session = Session(catalog, models_dirs=[root / "models"], output_dir=tmp_path / "out", device="cpu")
    path = tmp_path / "api.json"
    got = np.array(Image.open(session.run(session.prepare(session.open(path))).outputs[0]))
    pixels = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255.0
    expected = F.interpolate(pixels[..., :, 4:33], size=(16, 24), mode="bilinear", align_corners=False)
    expected = np.clip(255.0 * expected[0].permute(1, 2, 0).numpy(), 0, 255).astype(np.uint8)
    assert got.shape == (16, 24, 3) and np.array_equal(got, expected)


def test_latent_upscale_centre_crop_cuts_the_latent_then_scales(engine, tiny_dir, tmp_path):
    """An 88x48 image is an 11x6 latent; to 48x48 (6x6) round((11 - 6) / 2) = round(2.5) = 2
    columns go from each side (Python rounds halves to even), leaving 7, then bilinear to 6."""
    src = noise_png(tmp_path / "in.png", 88, 48)
    wf = graph({
        "ckpt": {"type": "LoadCheckpoint", "params": {"path": str(tiny_dir), "dtype": "fp32"}},
        "img": {"type": "LoadImage", "params": {"path": str(src)}},
        "enc": {"type": "VAEEncode", "inputs": {"vae": ["ckpt", "vae"], "image": ["img", "image"]}},
        "up": {"type": "LatentUpscale", "params": {"width": 48, "height": 48, "method": "bilinear", "crop": "center"},
               "inputs": {"latent": ["enc", "latent"]}},
        "dec": {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": ["up", "latent"]}},
        "save": {"type": "SaveImage", "inputs": {"image": ["dec", "image"]}}})
    values = engine.run(wf).values
    lat = values["enc"]["latent"].samples
    assert lat.shape[-2:] == (6, 11)
    expected = F.interpolate(lat[..., :, 2:9], size=(6, 6), mode="bilinear", align_corners=False)
    assert torch.equal(values["up"]["latent"].samples, expected)


def test_crop_defaults_to_disabled_so_old_workflows_keep_stretching(engine, tmp_path):
    src = noise_png(tmp_path / "in.png", 37, 20)
    wf = graph({"img": {"type": "LoadImage", "params": {"path": str(src)}},
                "sc": {"type": "ImageScale", "params": {"width": 24, "height": 16, "method": "bilinear"},
                       "inputs": {"image": ["img", "image"]}},
                "save": {"type": "SaveImage", "inputs": {"image": ["sc", "image"]}}})
    assert wf.nodes["sc"].params["crop"] == "disabled"
    values = engine.run(wf).values
    expected = F.interpolate(values["img"]["image"], size=(16, 24), mode="bilinear", align_corners=False).clamp(0, 1)
    assert torch.equal(values["sc"]["image"], expected)


def test_comfyui_scale_sizes_map_as_comfyui_reads_them(tmp_path):
    p = api_prompt()
    p["30"] = {"class_type": "ImageScale", "inputs": {"upscale_method": "area", "width": 0, "height": 0,
                                                      "crop": "disabled", "image": ["8", 0]}}
    p["31"] = {"class_type": "LatentUpscale", "inputs": {"upscale_method": "bicubic", "width": 100, "height": 36,
                                                         "crop": "center", "samples": ["5", 0]}}
    n = mapped(p, tmp_path)
    # width = height = 0 is "no resize" in ComfyUI; ours would take the scale.
    assert n["30"]["params"] == {"method": "area", "scale": 1.0, "width": 0, "height": 0}
    # LatentUpscale takes at least 64 and floors to the latent grid.
    assert n["31"]["params"] == {"method": "bicubic", "width": 96, "height": 64, "crop": "center"}


def comfyui_latent_upscale_size(latent_w, latent_h, width, height):
    """nodes.py LatentUpscale.upscale, written out: the latent's size after it (latent units)."""
    if width == 0:
        height = max(64, height)
        width = max(64, round(latent_w * height / latent_h))
    elif height == 0:
        width = max(64, width)
        height = max(64, round(latent_h * width / latent_w))
    return width // 8, height // 8


@pytest.mark.parametrize("width,height", [(0, 704), (0, 705), (0, 40), (472, 0), (100, 0)])
def test_latent_upscale_with_one_side_0_gives_comfyuis_size(engine, tmp_path, width, height):
    """A 64x96 image is an 8x12 latent. (0, 704): ComfyUI takes round(8 * 704 / 12) = 469 px, floored
    to 58 columns, where rounding 469.3 to the nearest multiple of 8 would give 59; 705 (no multiple
    of 8) floors to 88 rows; a side under 64 becomes 64."""
    p = {"5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}},
         "6": {"class_type": "LatentUpscale", "inputs": {"upscale_method": "bilinear", "width": width,
                                                         "height": height, "crop": "disabled", "samples": ["5", 0]}}}
    n = mapped(p, tmp_path)
    assert n["6"]["params"] == {"method": "bilinear", "width": width, "height": height, "rounding": "comfyui"}
    doc = {"format": "latentloom.workflow", "version": 2, "nodes": n}
    values = engine.run(load(doc, catalog), targets=["6"]).values
    w, h = comfyui_latent_upscale_size(8, 12, width, height)
    assert values["6"]["latent"].samples.shape[-2:] == (h, w)
    expected = F.interpolate(values["5"]["latent"].samples, size=(h, w), mode="bilinear", align_corners=False)
    assert torch.equal(values["6"]["latent"].samples, expected)


def test_latent_upscale_rounding_nearest_stays_the_default():
    """Our own workflows keep their meaning: rounding defaults to nearest, where 469.3 px -> 472."""
    wf = graph({"latent": {"type": "EmptyLatent", "params": {"width": 64, "height": 96}},
                "up": {"type": "LatentUpscale", "params": {"height": 704}, "inputs": {"latent": ["latent", "latent"]}}})
    assert wf.nodes["up"].params["rounding"] == "nearest"
    from latentloom.app.sd.upscale import comfyui_latent_size, target_size
    assert target_size(0, 704, 1.5, 64, 96, 8) == (472, 704)
    assert comfyui_latent_size(0, 704, 8, 12) == (464, 704)


@pytest.mark.parametrize("width,height", [(0, 50), (37, 0), (0, 1)])
def test_image_scale_with_one_side_0_already_gives_comfyuis_size(engine, tmp_path, width, height):
    """ComfyUI's ImageScale: the missing side is max(1, round(side * given / other)), no 8-grid."""
    src = noise_png(tmp_path / "in.png", 37, 20)
    p = {"1": {"class_type": "LoadImage", "inputs": {"image": str(src)}},
         "2": {"class_type": "ImageScale", "inputs": {"upscale_method": "bilinear", "width": width, "height": height,
                                                      "crop": "disabled", "image": ["1", 0]}},
         "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 0]}}}
    doc = {"format": "latentloom.workflow", "version": 2, "nodes": mapped(p, tmp_path)}
    values = engine.run(load(doc, catalog)).values
    if width == 0:
        width = max(1, round(37 * height / 20))
    else:
        height = max(1, round(20 * width / 37))
    expected = F.interpolate(values["1"]["image"], size=(height, width), mode="bilinear", align_corners=False)
    assert torch.equal(values["2"]["image"], expected.clamp(0, 1))


# -- ControlNet ---------------------------------------------------------------------------------
def test_comfyui_image_scale_pixels_are_comfyuis(tmp_path):
    """ComfyUI's ImageScale: lanczos goes through 8-bit RGB (255 x clipped, truncated), PIL's LANCZOS,
    / 255, even at an unchanged size (ImageScaleBy 1); bicubic is not clamped to 0..1. Our own
    default (pixels float) resizes float planes and clamps."""
    from latentloom.app.sd import upscale
    x = torch.rand(1, 3, 20, 37, generator=torch.Generator().manual_seed(2)) * 1.1 - 0.05

    def lanczos(w, h):
        arr = np.clip(255.0 * x[0].permute(1, 2, 0).numpy(), 0, 255).astype(np.uint8)
        out = np.array(Image.fromarray(arr).resize((w, h), Image.Resampling.LANCZOS)).astype(np.float32) / 255.0
        return torch.from_numpy(out).permute(2, 0, 1)[None]

    assert torch.equal(upscale.image(x, 41, 23, "lanczos", pixels="comfyui"), lanczos(41, 23))
    assert torch.equal(upscale.image(x, 37, 20, "lanczos", pixels="comfyui"), lanczos(37, 20))
    bicubic = F.interpolate(x, size=(23, 41), mode="bicubic")
    assert bicubic.min() < 0 and bicubic.max() > 1
    assert torch.equal(upscale.image(x, 41, 23, "bicubic", pixels="comfyui"), bicubic)
    assert torch.equal(upscale.image(x, 41, 23, "bicubic"), bicubic.clamp(0, 1))
    p = api_prompt()
    p["30"] = {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "lanczos", "scale_by": 1.0, "image": ["8", 0]}}
    p["31"] = {"class_type": "ImageScale", "inputs": {"upscale_method": "lanczos", "width": 0, "height": 0,
                                                      "crop": "disabled", "image": ["8", 0]}}
    n = mapped(p, tmp_path)
    assert n["30"]["params"] == {"method": "lanczos", "scale": 1.0, "pixels": "comfyui"}
    assert n["31"]["params"] == {"method": "lanczos", "scale": 1.0, "width": 0, "height": 0}  # untouched: float


def test_old_controlnet_apply_and_diff_loader_map_onto_apply_controlnet(tmp_path):
    p = api_prompt()
    p["40"] = {"class_type": "DiffControlNetLoader", "inputs": {"model": ["4", 0],
                                                                "control_net_name": "canny.safetensors"}}
    p["41"] = {"class_type": "LoadImage", "inputs": {"image": "edges.png"}}
    p["42"] = {"class_type": "ControlNetApply", "inputs": {
        "conditioning": ["6", 0], "control_net": ["40", 0], "image": ["41", 0], "strength": 0.7},
        "_meta": {"title": "Edges"}}
    p["3"]["inputs"]["positive"] = ["42", 0]
    path = tmp_path / "api.json"
    path.write_text(json.dumps(p))
    doc = open_document(path).data
    assert check(doc, catalog)[1] == []
    n = doc["nodes"]
    assert n["40"] == {"type": "LoadControlNet", "params": {"path": "canny.safetensors"}, "inputs": {}}
    assert n["42"] == {"type": "ApplyControlNet", "params": {"strength": 0.7}, "ui": {"title": "Edges"},
                       "inputs": {"positive": ["6", "conditioning"], "negative": ["6", "conditioning"],
                                  "controlnet": ["40", "controlnet"], "image": ["41", "image"]}}
    # The negative keeps its own encoding: the control reaches the unconditional pass through the
    # positive's guides, as ComfyUI's control_apply_to_uncond does.
    assert n["3"]["inputs"]["positive"] == ["42", "positive"]
    assert n["3"]["inputs"]["negative"] == ["7", "conditioning"]


@pytest.fixture
def tiny_net(tiny_pipe, tmp_path):
    """A tiny ControlNet folder; its config stands in for SD 1.5's while the test runs."""
    from latentloom.app.sd import controlnet
    from tests.support.controlnets import tiny_controlnet
    net = tiny_controlnet(tiny_pipe.unet, 1)
    net.save_pretrained(tmp_path / "cn")
    net.save_config(tmp_path / "cn-config")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(controlnet, "CONFIG_DIR", tmp_path / "cn-config")
        yield tmp_path / "cn"


def test_controlnet_apply_on_the_positive_equals_applying_it_to_both(engine, tiny_dir, tiny_net, tmp_path):
    """Diffusers sampling: guides on the positive alone act on the whole guidance batch, so the old
    node's positive-only wiring renders exactly what ApplyControlNet on both conditionings does."""
    hint = noise_png(tmp_path / "hint.png", 64, 64, seed=3)

    def run(negative):
        wf = graph({
            "ckpt": {"type": "LoadCheckpoint", "params": {"path": str(tiny_dir), "dtype": "fp32"}},
            "pos": {"type": "TextEncode", "params": {"text": "a fox"}, "inputs": {"clip": ["ckpt", "clip"]}},
            "neg": {"type": "TextEncode", "params": {"text": "blurry"}, "inputs": {"clip": ["ckpt", "clip"]}},
            "cn": {"type": "LoadControlNet", "params": {"path": str(tiny_net), "dtype": "fp32"}},
            "hint": {"type": "LoadImage", "params": {"path": str(hint)}},
            "apply": {"type": "ApplyControlNet", "params": {"strength": 0.7},
                      "inputs": {"positive": ["pos", "conditioning"],
                                 "negative": ["neg" if negative == "both" else "pos", "conditioning"],
                                 "controlnet": ["cn", "controlnet"], "image": ["hint", "image"]}},
            "latent": {"type": "EmptyLatent", "params": {"width": 64, "height": 64}},
            "noise": {"type": "LatentNoise", "params": {"seed": 5}},
            "sched": {"type": "Scheduler", "inputs": {"model": ["ckpt", "model"]}},
            "sampler": {"type": "Sampler", "params": {"steps": 2},
                        "inputs": {"model": ["ckpt", "model"], "positive": ["apply", "positive"],
                                   "negative": ["apply", "negative"] if negative == "both"
                                   else ["neg", "conditioning"],
                                   "latent": ["latent", "latent"], "noise": ["noise", "noise"],
                                   "scheduler": ["sched", "scheduler"]}},
            "dec": {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": ["sampler", "latent"]}},
            "save": {"type": "SaveImage", "inputs": {"image": ["dec", "image"]}}})
        return np.array(Image.open(engine.run(wf).outputs[0]))

    assert np.array_equal(run("both"), run("positive only"))


def test_difference_controlnets_are_refused_clearly(tmp_path):
    from safetensors.torch import save_file
    from latentloom.app.core.errors import UserError
    from latentloom.app.sd import controlnet
    path = tmp_path / "control_canny_diff.safetensors"
    save_file({"difference": torch.zeros(1), "control_model.input_hint_block.0.weight": torch.zeros(16, 3, 3, 3)},
              str(path))
    with pytest.raises(UserError) as info:
        controlnet.read(path, torch.float32)
    assert str(info.value) == ("param 'path': control_canny_diff.safetensors is not an SD 1.5 ControlNet (a "
                               "difference ControlNet: its weights are offsets from a base model's "
                               "(DiffControlNetLoader); use the full ControlNet file)")


# -- A1111 hires fix ----------------------------------------------------------------------------
HIRES = ("a lighthouse\nNegative prompt: blurry\n"
         "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 5, Size: 512x768, "
         "Model: sd15, Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 10, "
         "Hires upscaler: Latent (nearest-exact), Version: v1.9")


def a1111(text):
    from latentloom.app.formats.a1111 import to_document
    doc = to_document(text)
    assert check(doc, catalog)[1] == []
    return doc["nodes"]


def test_a1111_hires_with_a_latent_upscaler_builds_the_two_pass_graph():
    n = a1111(HIRES)
    assert n["latent"] == {"type": "EmptyLatent", "params": {"width": 512, "height": 768, "batch_size": 1}}
    assert n["sampler"]["params"] == {"steps": 20, "cfg": 7.0, "denoise": 1.0}
    assert n["upscale"] == {"type": "LatentUpscale", "params": {"width": 768, "height": 1152,
                                                                "method": "nearest-exact", "crop": "disabled"},
                            "inputs": {"latent": ["sampler", "latent"]}}
    assert n["hires"] == {"type": "Sampler", "params": {"steps": 10, "cfg": 7.0, "denoise": 0.45}, "inputs": {
        "model": ["ckpt", "model"], "positive": ["positive", "conditioning"],
        "negative": ["negative", "conditioning"], "latent": ["upscale", "latent"], "noise": ["noise", "noise"],
        "scheduler": ["scheduler", "scheduler"]}}
    assert n["decode"]["inputs"]["latent"] == ["hires", "latent"]
    assert sorted(n) == ["ckpt", "decode", "hires", "latent", "negative", "noise", "positive", "sampler", "save",
                         "scheduler", "upscale"]


@pytest.mark.parametrize("upscaler,method", [("Latent", "bilinear"), ("Latent (antialiased)", "bilinear-antialias"),
                                             ("Latent (bicubic)", "bicubic"),
                                             ("Latent (bicubic antialiased)", "bicubic-antialias"),
                                             ("Latent (nearest)", "nearest")])
def test_a1111_latent_upscalers_map_to_latent_upscale_modes(upscaler, method):
    n = a1111(HIRES.replace("Latent (nearest-exact)", upscaler))
    assert n["upscale"]["type"] == "LatentUpscale" and n["upscale"]["params"]["method"] == method


def test_a1111_model_upscalers_fall_back_to_lanczos_and_say_so():
    text = HIRES.replace("Latent (nearest-exact)", "R-ESRGAN 4x+").replace("Hires steps: 10, ", "")
    text = text.replace("Hires upscale: 1.5", "Hires resize: 1024x1024")
    n = a1111(text)
    assert n["first_decode"] == {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"],
                                                                 "latent": ["sampler", "latent"]}}
    # Both sides given: cut to the new aspect (A1111 truncates the covering size), then scale.
    assert n["upscale"] == {"type": "ImageScale", "params": {"width": 1024, "height": 1024, "method": "lanczos",
                                                             "crop": "center"},
                            "inputs": {"image": ["first_decode", "image"]},
                            "ui": {"title": "Hires upscale: R-ESRGAN 4x+ is not available, lanczos instead"}}
    assert n["hires_encode"] == {"type": "VAEEncode", "inputs": {"vae": ["ckpt", "vae"], "image": ["upscale", "image"]}}
    assert n["hires"]["inputs"]["latent"] == ["hires_encode", "latent"]
    assert n["hires"]["params"] == {"steps": 20, "cfg": 7.0, "denoise": 0.45}  # no Hires steps: the same steps
    lanczos = a1111(HIRES.replace("Latent (nearest-exact)", "Lanczos"))["upscale"]
    assert lanczos["type"] == "ImageScale" and lanczos["params"]["method"] == "lanczos" and "ui" not in lanczos


@pytest.mark.parametrize("resize,size", [("1024x0", (1024, 1536)), ("0x1000", (664, 1000))])
def test_a1111_hires_resize_with_one_side_keeps_the_aspect(resize, size):
    n = a1111(HIRES.replace("Hires upscale: 1.5", f"Hires resize: {resize}"))
    # A1111: 1000 * 512 // 768 = 666, floored to the latent grid.
    assert (n["upscale"]["params"]["width"], n["upscale"]["params"]["height"]) == size
    assert n["upscale"]["params"]["crop"] == "disabled"


def test_a1111_hires_sampler_cfg_and_prompts():
    text = HIRES.replace("Version", 'Hires sampler: Euler a, Hires CFG Scale: 4, Hires prompt: "a <lora:x:1> '
                                    'red lighthouse", Version')
    n = a1111(text)
    assert n["hires_scheduler"] == {"type": "Scheduler", "inputs": {"model": ["ckpt", "model"]},
                                    "params": {"name": "euler_ancestral", "sigmas": "karras", "sampling": "comfyui"}}
    assert n["hires_positive"]["params"] == {"text": "a  red lighthouse", "clip_skip": 0, "weighting": "a1111"}
    assert n["hires"]["params"]["cfg"] == 4.0
    assert n["hires"]["inputs"]["positive"] == ["hires_positive", "conditioning"]
    assert n["hires"]["inputs"]["negative"] == ["negative", "conditioning"]
    assert n["hires"]["inputs"]["scheduler"] == ["hires_scheduler", "scheduler"]
    # A hires schedule type alone keeps the first pass's sampler.
    n = a1111(HIRES.replace("Version", "Hires schedule type: Exponential, Version"))
    assert n["hires_scheduler"]["params"] == {"name": "dpmpp_2m", "sigmas": "exponential", "sampling": "comfyui"}


def test_a1111_hires_png_runs_at_the_hires_size(tmp_path, tiny_dir):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x48, "
                                "Model: tiny, Denoising strength: 0.5, Hires upscale: 1.5, Hires upscaler: Latent")
    png = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "tiny.safetensors").symlink_to(tiny_dir)
    session = Session(catalog, models_dirs=[models], output_dir=tmp_path / "out", device="cpu")
    result = session.run(session.prepare(session.open(png), ["ckpt.dtype=\"fp32\""]))
    assert Image.open(result.outputs[0]).size == (96, 72)
    assert result.values["upscale"]["latent"].samples.shape[-2:] == (9, 12)


@pytest.mark.parametrize("steps,strength", [(10, 0.4), (10, 1.0), (10, 0.05), (20, 0.75), (7, 0.5)])
def test_a1111_img2img_runs_a1111s_steps(tmp_path, tiny_dir, steps, strength):
    """A1111's img2img (img2img_fix_steps off): t_enc = int(min(strength, 0.999) * steps); the sampler
    runs sigmas[steps - t_enc - 1:] of a steps-long schedule, t_enc + 1 steps, with noise scaled by
    the first of them (where ComfyUI's denoise would run `steps` steps of int(steps / strength))."""
    from PIL import PngImagePlugin
    from latentloom.app.sd.comfy import schedules
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"a fox\nSteps: {steps}, Sampler: Euler, Schedule type: Karras, CFG scale: 7, "
                                f"Seed: 5, Size: 64x64, Model: tiny, Denoising strength: {strength}")
    png = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "tiny.safetensors").symlink_to(tiny_dir)
    src = noise_png(tmp_path / "src.png", 64, 64)
    session = Session(catalog, models_dirs=[models], output_dir=tmp_path / "out", device="cpu")
    doc = session.open(png)
    t_enc = int(min(strength, 0.999) * steps)
    assert doc.data["nodes"]["scheduler"]["params"]["start_at_step"] == steps - t_enc - 1
    events = []
    result = session.run(session.prepare(doc, ["ckpt.dtype=\"fp32\"", f"image.path={json.dumps(str(src))}"]),
                         on_event=events.append)
    from latentloom.app.engine.events import NodeProgress
    totals = {e.total for e in events if isinstance(e, NodeProgress) and e.node_id == "sampler"}
    assert totals == {t_enc + 1}
    handle = result.values["scheduler"]["scheduler"]
    full = schedules.sigmas_for(schedules.ModelSampling(handle.config), "karras", "euler", steps, 1.0)
    from latentloom.app.sd.comfy.sample import window
    assert torch.equal(window(full, handle), full[steps - t_enc - 1:])


def test_export_of_methods_comfyui_lacks_is_refused():
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.formats.comfy_export import to_prompt
    wf = graph({"latent": {"type": "EmptyLatent"},
                "up": {"type": "LatentUpscale", "params": {"method": "bilinear-antialias"},
                       "inputs": {"latent": ["latent", "latent"]}}})
    with pytest.raises(WorkflowError) as info:
        to_prompt(wf)
    assert [str(p) for p in info.value.problems] == [
        "node 'up' param 'method': ComfyUI's LatentUpscale has no 'bilinear-antialias'"]
    wf = graph({"latent": {"type": "EmptyLatent"},
                "up": {"type": "LatentUpscale", "params": {"scale": 2.0}, "inputs": {"latent": ["latent", "latent"]}}})
    assert to_prompt(wf)[0]["up"] == {"class_type": "LatentUpscaleBy", "inputs": {
        "upscale_method": "nearest-exact", "scale_by": 2.0, "samples": ["latent", 0]}}
    wf = graph({"latent": {"type": "EmptyLatent"},
                "up": {"type": "LatentUpscale", "params": {"scale": 2.0, "method": "bislerp"},
                       "inputs": {"latent": ["latent", "latent"]}}})
    assert to_prompt(wf)[0]["up"]["inputs"]["upscale_method"] == "bislerp"
    # ComfyUI's ImageScale has no bislerp (only its latent upscalers do).
    wf = graph({"img": {"type": "LoadImage", "params": {"path": "x.png"}},
                "sc": {"type": "ImageScale", "params": {"method": "bislerp"}, "inputs": {"image": ["img", "image"]}}})
    with pytest.raises(WorkflowError) as info:
        to_prompt(wf)
    assert [str(p) for p in info.value.problems] == ["node 'sc' param 'method': ComfyUI's ImageScale has no 'bislerp'"]


# -- embedding:NAME in ComfyUI prompts ------------------------------------------------------------
@pytest.fixture(scope="module")
def emb_models(tmp_path_factory):
    """models/embeddings/tinyemb.safetensors (one vector), styles/zxmulti.pt (three, A1111 layout)
    and sdxl.safetensors ({clip_l, clip_g}, as SDXL embeddings are saved)."""
    from safetensors.torch import save_file
    root = tmp_path_factory.mktemp("models")
    (root / "embeddings" / "styles").mkdir(parents=True)
    gen = torch.Generator().manual_seed(4)
    save_file({"<tinyemb>": torch.randn(32, generator=gen)}, str(root / "embeddings" / "tinyemb.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(3, 32, generator=gen)}, "name": "zxmulti"},
               root / "embeddings" / "styles" / "zxmulti.pt")
    save_file({"clip_l": torch.randn(2, 32, generator=gen), "clip_g": torch.randn(2, 64, generator=gen)},
              str(root / "embeddings" / "sdxl.safetensors"))
    return root


def test_weighted_embeddings_in_comfyui_prompts_match_hand_built_embeds(runtime, tmp_path, tiny_dir, emb_models):
    """`(embedding:tinyemb:1.2)` and `embedding:styles/zxmulti.pt` read as ComfyUI does: the vectors of
    the files in models/embeddings/, the first weighted z_empty + (z - z_empty) * 1.2."""
    import diffusers
    from latentloom.app.engine.executor import Engine
    from tests.conftest import WORKFLOWS, load_workflow
    engine = Engine(catalog, output_dir=tmp_path / "out", models_dirs=[emb_models], env=runtime, previews=False,
                    base_dirs=[WORKFLOWS])
    prompt = "a photo of (embedding:tinyemb:1.2), with embedding:styles/zxmulti.pt in the style"
    wf = load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "positive.text": prompt, "positive.weighting": "comfyui",
        "negative.text": "blurry", "noise.seed": 9, "sampler.steps": 3, "latent.width": 64, "latent.height": 64})
    got = np.array(Image.open(engine.run(wf).outputs[0]))

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.load_textual_inversion(str(emb_models / "embeddings" / "tinyemb.safetensors"), token="tinyemb")
    pipe.load_textual_inversion(str(emb_models / "embeddings" / "styles" / "zxmulti.pt"), token="zxmulti")
    tok = pipe.tokenizer

    def encode(text):
        ids = tok(pipe.maybe_convert_prompt(text, tok), padding="max_length", max_length=77).input_ids
        with torch.no_grad():
            return ids, pipe.text_encoder(torch.tensor([ids]))[0]

    ids, z = encode("a photo of tinyemb , with zxmulti in the style")
    _, z_empty = encode("")
    at = ids.index(tok.convert_tokens_to_ids("tinyemb"))
    assert ids[at + 3:at + 6] == tok.convert_tokens_to_ids(["zxmulti", "zxmulti_1", "zxmulti_2"])
    z[0, at] = (z[0, at] - z_empty[0, at]) * 1.2 + z_empty[0, at]
    _, negative = encode("blurry")
    expected = pipe(prompt_embeds=z, negative_prompt_embeds=negative, height=64, width=64, num_inference_steps=3,
                    generator=torch.Generator().manual_seed(9)).images[0]
    assert np.array_equal(got, np.array(expected))


def test_embedding_names_with_subfolders_and_sdxl_files(emb_models):
    from latentloom.app.sd import embeddings
    # A name never climbs out of the embeddings folder: "../up" is no name (the text stays text).
    assert embeddings.names("(embedding:styles/zxmulti.pt:1.1), embedding:tinyemb, embedding:../up") == [
        "styles/zxmulti.pt", "tinyemb"]
    vectors = embeddings.read(emb_models / "embeddings" / "sdxl.safetensors", "sdxl")
    assert vectors.shape == (2, 32)


def test_imported_comfyui_prompt_finds_embeddings_in_the_models_folder(tmp_path, emb_models):
    """Found in models/embeddings/ (and a sub-folder of it); a missing one is no validation error:
    ComfyUI leaves it out with a warning (test_embeddings has the tokens)."""
    from latentloom.app.engine.executor import Engine
    p = api_prompt()
    p["6"]["inputs"]["text"] = "a (embedding:styles/zxmulti:1.1) fox, embedding:tinyemb embedding:zxmulti"
    p["7"]["inputs"]["text"] = "embedding:missing"
    path = tmp_path / "api.json"
    path.write_text(json.dumps(p))
    wf = load(open_document(path).data, catalog)
    engine = Engine(catalog, output_dir=tmp_path / "out", models_dirs=[emb_models])
    resolved = engine.resolve_files(wf, ["6", "7"])
    folder = (emb_models / "embeddings").resolve()
    assert {k: r.path for k, r in resolved["6"].items()} == {
        "text:styles/zxmulti": str(folder / "styles" / "zxmulti.pt"),
        "text:tinyemb": str(folder / "tinyemb.safetensors"),
        "text:zxmulti": str(folder / "styles" / "zxmulti.pt")}
    assert resolved["7"] == {}


# -- InpaintModelConditioning noise_mask false ----------------------------------------------------
def inpaint_prompt(noise_mask):
    p = api_prompt()
    p["20"] = {"class_type": "LoadImage", "inputs": {"image": "fox.png"}}
    p["24"] = {"class_type": "InpaintModelConditioning", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2], "pixels": ["20", 0], "mask": ["20", 1],
        "noise_mask": noise_mask}}
    p["3"]["inputs"].update(positive=["24", 0], negative=["24", 1], latent_image=["24", 2], denoise=0.6)
    return p


def comfy_folder(tmp_path, model_dir):
    """A ComfyUI folder: models/checkpoints/tiny and input/fox.png, 68x64 with a transparent square
    and a half-transparent band (alpha 128: mask 0.498, which rounds to 0)."""
    root = tmp_path / "ComfyUI"
    (root / "models" / "checkpoints").mkdir(parents=True)
    (root / "models" / "checkpoints" / "tiny").symlink_to(model_dir)
    (root / "input").mkdir()
    rgba = np.concatenate([np.asarray(Image.open(noise_png(tmp_path / "rgb.png", 68, 64))),
                           np.full((64, 68, 1), 255, np.uint8)], axis=2)
    rgba[20:40, 21:43, 3] = 0
    rgba[44:50, 5:60, 3] = 128
    Image.fromarray(rgba).save(root / "input" / "fox.png")
    return root


def run_prompt(session, prompt, tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(prompt))
    return session.run(session.prepare(session.open(path)))


def comfyui_inpaint_parts(model_dir, png):
    """InpaintModelConditioning (nodes.py) and the model's concat (model_base.concat_cond), written
    out: mask = 1 - alpha, bilinear to the pixels, both centre-cropped to multiples of 8 (68 -> 64:
    2 columns off the left); the latent encodes the cropped pixels; the masked image has them 0.5
    where round(mask) is 1; the noise mask is the mask bilinear to the latent, the model's mask that
    rounded."""
    import diffusers
    rgba = torch.from_numpy(np.asarray(Image.open(png)).copy()).float() / 255.0
    pixels = rgba[None, :, :, :3].permute(0, 3, 1, 2).contiguous()
    mask = (1.0 - rgba[:, :, 3])[None, None]
    mask = F.interpolate(mask, size=pixels.shape[-2:], mode="bilinear")
    pixels, mask = pixels[..., :, 2:66], mask[..., :, 2:66]
    greyed = (pixels - 0.5) * (1.0 - mask.round()) + 0.5
    vae = diffusers.AutoencoderKL.from_pretrained(model_dir / "vae")
    with torch.no_grad():
        enc = lambda x: vae.encode(x * 2.0 - 1.0).latent_dist.mean * vae.config.scaling_factor  # noqa: E731
        samples, masked = enc(pixels), enc(greyed)
    noise_mask = F.interpolate(mask, size=samples.shape[-2:], mode="bilinear")
    return samples, masked, noise_mask, noise_mask.round()


@pytest.mark.parametrize("noise_mask", [True, False])
def test_inpaint_model_conditioning_latent_is_comfyuis(tmp_path, tiny_dir, noise_mask):
    n = mapped(inpaint_prompt(noise_mask), tmp_path)
    assert n["24"] == {"type": "InpaintEncode", "params": {"masking": "comfyui", "noise_mask": noise_mask},
                       "inputs": {"vae": ["4", "vae"], "image": ["20", "image"], "mask": ["20", "mask"]}}
    assert n["3"]["inputs"]["positive"] == ["6", "conditioning"] and n["3"]["inputs"]["latent"] == ["24", "latent"]
    root = comfy_folder(tmp_path, tiny_dir)
    session = Session(catalog, models_dirs=[root / "models"], output_dir=tmp_path / "out", device="cpu")
    got = run_prompt(session, inpaint_prompt(noise_mask), tmp_path, "p").values["24"]["latent"]
    samples, masked, small, rounded = comfyui_inpaint_parts(tiny_dir, root / "input" / "fox.png")
    assert torch.equal(got.samples, samples) and torch.equal(got.masked_image_latents, masked)
    assert torch.equal(got.inpaint_mask, rounded)
    assert torch.equal(got.mask, small) if noise_mask else got.mask is None
    assert not torch.equal(small, rounded)  # the half-transparent band: 0.498 is kept unrounded


def test_inpaint_model_conditioning_without_noise_mask_renders_as_a_plain_encode(tmp_path, tiny_dir):
    """With a 4-channel model ComfyUI ignores the concat: no noise mask, the latent the cropped
    VAE encode of the pixels, so it renders as ComfyUI's VAEEncode in its place."""
    root = comfy_folder(tmp_path, tiny_dir)
    plain = api_prompt()
    plain["20"] = {"class_type": "LoadImage", "inputs": {"image": "fox.png"}}
    plain["24"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}}
    plain["3"]["inputs"].update(latent_image=["24", 0], denoise=0.6)
    session = Session(catalog, models_dirs=[root / "models"], output_dir=tmp_path / "out", device="cpu")
    images = [np.array(Image.open(run_prompt(session, prompt, tmp_path, f"p{i}").outputs[0]))
              for i, prompt in enumerate((inpaint_prompt(False), plain))]
    assert images[0].shape == (64, 64, 3) and np.array_equal(images[0], images[1])


@pytest.fixture(scope="module")
def tiny_nine_dir(tmp_path_factory):
    from tests.tiny import save_tiny_pipeline
    path = tmp_path_factory.mktemp("models") / "tiny-inpaint"
    save_tiny_pipeline(path, in_channels=9)
    return path


class Concat(torch.nn.Module):
    """A 4-channel U-Net: the 9-channel one with fixed extra channels appended to its input."""

    def __init__(self, unet, extra):
        super().__init__()
        self.unet, self.extra = unet, extra
        self.config = type("Config", (), {"in_channels": 4})()
        self.device, self.dtype = unet.device, unet.dtype

    def forward(self, x, t, **kw):
        return self.unet(torch.cat([x, self.extra.repeat(x.shape[0], 1, 1, 1)], dim=1), t, **kw)


def test_nine_channel_model_without_noise_mask_samples_everywhere_with_the_concat(tmp_path, tiny_nine_dir):
    """ComfyUI with noise_mask false and a 9-channel model: the model still gets [round(mask),
    masked-image latents] beside x, and no noise mask keeps anything: the same as sampling the
    plain latent (no mask) with a U-Net that appends those channels itself."""
    import diffusers
    from latentloom.app.sd.comfy import sample
    from latentloom.app.sd.handles import Latent
    root = comfy_folder(tmp_path, tiny_nine_dir)
    session = Session(catalog, models_dirs=[root / "models"], output_dir=tmp_path / "out", device="cpu")
    values = run_prompt(session, inpaint_prompt(False), tmp_path, "p").values
    samples, masked, _, rounded = comfyui_inpaint_parts(tiny_nine_dir, root / "input" / "fox.png")
    unet = diffusers.UNet2DConditionModel.from_pretrained(tiny_nine_dir / "unet")
    expected = sample.sample(Concat(unet, torch.cat([rounded, masked], dim=1)), values["6"]["conditioning"],
                             values["7"]["conditioning"], Latent(samples), 42, values["3.scheduler"]["scheduler"],
                             3, 7.0, 0.6)
    assert torch.equal(values["3"]["latent"].samples, expected)
    assert torch.equal(values["3"]["latent"].inpaint_mask, rounded)  # a second sampler in a chain gets it too
    with_mask = run_prompt(session, inpaint_prompt(True), tmp_path, "q").values["3"]["latent"].samples
    assert not torch.equal(with_mask, expected)


def test_ui_files_give_the_new_nodes_their_widget_values():
    from latentloom.app.formats import read_ui
    out = lambda name, *links: [{"name": name, "type": name, "links": list(links)}]  # noqa: E731
    nodes = [
        {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["tiny"], "inputs": [],
         "outputs": out("MODEL", 1) + out("CLIP", 2) + out("VAE")},
        {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["a fox"],
         "inputs": [{"name": "clip", "type": "CLIP", "link": 2}], "outputs": out("CONDITIONING", 3)},
        {"id": 40, "type": "DiffControlNetLoader", "widgets_values": ["canny.safetensors"],
         "inputs": [{"name": "model", "type": "MODEL", "link": 1}], "outputs": out("CONTROL_NET", 4)},
        {"id": 41, "type": "LoadImage", "widgets_values": ["edges.png", "image"], "inputs": [],
         "outputs": out("IMAGE", 5, 6) + out("MASK")},
        {"id": 42, "type": "ControlNetApply", "title": "Edges", "widgets_values": [0.65],
         "inputs": [{"name": "conditioning", "type": "CONDITIONING", "link": 3},
                    {"name": "control_net", "type": "CONTROL_NET", "link": 4},
                    {"name": "image", "type": "IMAGE", "link": 5}], "outputs": out("CONDITIONING")},
        {"id": 43, "type": "ImageScale", "widgets_values": ["bicubic", 40, 24, "center"],
         "inputs": [{"name": "image", "type": "IMAGE", "link": 6}], "outputs": out("IMAGE")},
    ]
    links = [[1, 4, 0, 40, 0, "MODEL"], [2, 4, 1, 6, 0, "CLIP"], [3, 6, 0, 42, 0, "CONDITIONING"],
             [4, 40, 0, 42, 1, "CONTROL_NET"], [5, 41, 0, 42, 2, "IMAGE"], [6, 41, 0, 43, 0, "IMAGE"]]
    n = read_ui({"last_node_id": 43, "nodes": nodes, "links": links, "version": 0.4})["nodes"]
    assert n["40"]["params"] == {"path": "canny.safetensors"}
    assert n["42"]["params"] == {"strength": 0.65} and n["42"]["ui"]["title"] == "Edges"
    assert n["42"]["inputs"]["controlnet"] == ["40", "controlnet"]
    assert n["43"]["params"] == {"method": "bicubic", "width": 40, "height": 24, "crop": "center",
                                 "pixels": "comfyui"}


# -- the old CheckpointLoader ----------------------------------------------------------------------
@pytest.mark.parametrize("config,skip", [("v1-inference.yaml", 0), ("v1-inference_fp16.yaml", 0),
                                         ("v1-inpainting-inference.yaml", 0), ("v1-inference_clip_skip_2.yaml", 1),
                                         ("anything_v3.yaml", 1), ("sd1/v1-inference_clip_skip_2_fp16.yaml", 1)])
def test_checkpoint_loader_with_an_sd1_config_is_load_checkpoint(tmp_path, config, skip):
    """ComfyUI detects the model from the weights and takes from the config only v-prediction and
    the text encoder's layer_idx: -2 in the clip-skip-2 configs (and anything_v3), our clip_skip 1."""
    p = api_prompt()
    p["4"] = {"class_type": "CheckpointLoader", "inputs": {"config_name": config, "ckpt_name": "tiny"}}
    p["10"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -1, "clip": ["4", 1]}}
    p["7"]["inputs"]["clip"] = ["10", 0]  # CLIPSetLastLayer sets the layer anew, as in ComfyUI
    n = mapped(p, tmp_path)
    assert n["4"] == {"type": "LoadCheckpoint", "params": {"path": "tiny"}, "inputs": {}}
    assert n["6"]["params"]["clip_skip"] == skip and n["7"]["params"]["clip_skip"] == 0


@pytest.mark.parametrize("config", ["v2-inference.yaml", "v2-inference-v.yaml", "mine.yaml", 3])
def test_checkpoint_loader_with_another_config_is_refused_naming_the_input(tmp_path, config):
    from latentloom.app.core.workflow import WorkflowError
    p = api_prompt()
    p["4"] = {"class_type": "CheckpointLoader", "inputs": {"config_name": config, "ckpt_name": "tiny"}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(p))
    with pytest.raises(WorkflowError) as info:
        open_document(path)
    assert [str(x) for x in info.value.problems] == [
        f"node '4' input 'config_name': {config!r} is not one of ComfyUI's SD 1.x configs (v1-inference.yaml, "
        "v1-inference_fp16.yaml, v1-inpainting-inference.yaml, v1-inference_clip_skip_2.yaml, "
        "v1-inference_clip_skip_2_fp16.yaml, anything_v3.yaml); Latent Loom runs SD 1.x checkpoints without "
        "v-prediction (for an SD 1.x checkpoint, use CheckpointLoaderSimple)"]


def test_checkpoint_loader_widgets_in_a_ui_file():
    from latentloom.app.formats import read_ui
    nodes = [{"id": 4, "type": "CheckpointLoader", "widgets_values": ["v1-inference_clip_skip_2.yaml", "tiny"],
              "inputs": [], "outputs": [{"name": "MODEL", "type": "MODEL", "links": []},
                                        {"name": "CLIP", "type": "CLIP", "links": [2]},
                                        {"name": "VAE", "type": "VAE", "links": []}]},
             {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["a fox"],
              "inputs": [{"name": "clip", "type": "CLIP", "link": 2}],
              "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": []}]}]
    n = read_ui({"last_node_id": 6, "nodes": nodes, "links": [[2, 4, 1, 6, 0, "CLIP"]], "version": 0.4})["nodes"]
    assert n["4"]["params"] == {"path": "tiny"} and n["6"]["params"]["clip_skip"] == 1


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "x"])
def test_a1111_unusable_hires_scales_are_named(value):
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.formats.a1111 import to_document
    with pytest.raises(WorkflowError) as info:
        to_document(HIRES.replace("Hires upscale: 1.5", f"Hires upscale: {value}"))
    expected = ("A1111 field 'Hires upscale': 'x' is not a number" if value == "x" else
                f"A1111 field 'Hires upscale': {value!r} is not a scale between 0 and 16")
    assert [str(p) for p in info.value.problems] == [expected]

    with pytest.raises(WorkflowError) as info:
        to_document(HIRES.replace("Size: 512x768", "Size: 0x768").replace("Hires upscale: 1.5", "Hires resize: 0x64"))
    assert [str(p) for p in info.value.problems] == ["A1111 field 'Size': 0x768 has no area"]
