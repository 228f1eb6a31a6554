"""Imported ComfyUI graphs against ComfyUI itself: PSNR of our render vs ComfyUI's, per sampler.

    python -m benchmarks.comfy_compare --comfyui ~/src/ComfyUI [--python PY] [--work DIR] [--only CASE,...]

Builds a random-weight SD 1.5-like checkpoint (full CLIP-L text encoder and VAE; a U-Net with
SD 1.5's first widths and context size, two levels of one layer each, so that ComfyUI detects it
as SD 1.5 and a CPU renders it in seconds; nothing is downloaded), renders every case with
ComfyUI's nodes (`--cpu --force-fp32 --fp32-text-enc`, in a separate process: benchmarks/
comfy_render.py) and with Latent Loom from the equivalent ComfyUI API prompt, and prints PSNR.
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m", "dpmpp_2m_sde",
            "dpmpp_sde", "ddim", "ddpm", "lcm", "uni_pc", "uni_pc_bh2", "deis"]
SCHEDULERS = ["normal", "karras", "exponential", "simple", "sgm_uniform", "ddim_uniform", "beta"]
BASE = dict(positive="a (red:1.3) fox in the snow, detailed", negative="blurry", width=64, height=64, seed=7,
            steps=6, cfg=6.0)


def cases():
    out = [dict(BASE, name=f"{s}-karras", sampler=s, scheduler="karras") for s in SAMPLERS]
    out += [dict(BASE, name=f"euler-{s}", sampler="euler", scheduler=s) for s in SCHEDULERS if s != "karras"]
    out += [dict(BASE, name="euler-normal-clipskip", sampler="euler", scheduler="normal", clip_skip=1),
            dict(BASE, name="dpmpp_2m-normal-cfg1", sampler="dpmpp_2m", scheduler="normal", cfg=1.0)]
    out += [dict(BASE, name=f"{s}-normal", sampler=s, scheduler="normal") for s in ("uni_pc", "uni_pc_bh2", "deis")]
    control = dict(control="mid-cn.safetensors", control_image="control.png", strength=0.8, start=0.0, end=1.0)
    out += [dict(BASE, name="euler-normal-controlnet", sampler="euler", scheduler="normal", **control),
            dict(BASE, name="heun-karras-controlnet-window", sampler="heun", scheduler="karras",
                 **dict(control, strength=1.2, start=0.2, end=0.7)),
            dict(BASE, name="dpmpp_2m-karras-rescalecfg", sampler="dpmpp_2m", scheduler="karras", rescale=0.7),
            dict(BASE, name="euler_ancestral-normal-controlnet-rescalecfg", sampler="euler_ancestral",
                 scheduler="normal", rescale=0.5, **control)]
    out += [dict(BASE, name="euler-karras-lora", sampler="euler", scheduler="karras",
                 lora=("mid-lora.safetensors", 0.8, 0.5)),
            dict(BASE, name="dpmpp_2m-karras-lora-model-only-clipskip", sampler="dpmpp_2m", scheduler="karras",
                 lora=("mid-lora.safetensors", 1.0, None), clip_skip=1)]
    long = ("a (red:1.3) fox in the snow, detailed fur, ((sharp focus)), soft morning light over a frozen lake, "
            "pine trees heavy with snow in the background, mountains, (mist:0.8), golden hour, wide angle, "
            "35mm photograph, film grain, high dynamic range, cinematic composition, award winning, "
            "national geographic, extremely detailed, (bokeh:1.1), 8k, masterpiece")
    out += [dict(BASE, name="euler-normal-long-prompt", sampler="euler", scheduler="normal", positive=long),
            dict(BASE, name="dpmpp_2m-karras-two-pass-advanced", sampler="dpmpp_2m", scheduler="karras",
                 second="two_pass"),
            dict(BASE, name="euler_ancestral-normal-hires-latent", sampler="euler_ancestral", scheduler="normal",
                 second="hires"),
            dict(BASE, name="uni_pc-karras-samplercustom", sampler="uni_pc", scheduler="karras", custom=True),
            dict(BASE, name="dpmpp_sde-normal-samplercustom-denoise", sampler="dpmpp_sde", scheduler="normal",
                 custom=True, source="vae", denoise=0.7)]
    out += [dict(BASE, name="dpmpp_2m-karras-img2img", sampler="dpmpp_2m", scheduler="karras", source="vae",
                 denoise=0.6),
            dict(BASE, name="euler-normal-inpaint-vaeencodeforinpaint", sampler="euler", scheduler="normal",
                 source="inpaint"),
            dict(BASE, name="euler_ancestral-karras-setlatentnoisemask", sampler="euler_ancestral",
                 scheduler="karras", source="noise_mask", denoise=0.7),
            dict(BASE, name="dpmpp_2m-normal-inpaintmodelconditioning", sampler="dpmpp_2m", scheduler="normal",
                 source="inpaint_cond", denoise=0.8)]
    return out


def build_checkpoint(folder):
    """checkpoints/mid.safetensors (original layout) and mid-config/ (its diffusers configs)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from tests.support.original_layout import save_original_checkpoint, write_config_dir
    ckpt = folder / "checkpoints" / "mid.safetensors"
    if all(p.exists() for p in (ckpt, folder / "controlnet" / "mid-cn.safetensors", folder / "loras" / "mid-lora.safetensors")):
        return ckpt, folder / "mid-config"
    res = ROOT / "resources" / "sd15"
    torch.manual_seed(0)
    unet_config = json.loads((res / "unet" / "config.json").read_text())
    unet_config.update(layers_per_block=1, block_out_channels=[320, 640],
                       down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                       up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"])
    unet = UNet2DConditionModel.from_config(unet_config)
    with torch.no_grad():
        for p in unet.conv_out.parameters():
            p.mul_(20)  # random weights give outputs too flat to tell samplers apart
    vae = AutoencoderKL.from_config(json.loads((res / "vae" / "config.json").read_text()))
    te = CLIPTextModel(CLIPTextConfig.from_pretrained(res / "text_encoder"))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=CLIPTokenizer.from_pretrained(
        res / "tokenizer"), scheduler=PNDMScheduler.from_pretrained(res / "scheduler"), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    save_original_checkpoint(pipe, ckpt)
    write_config_dir(pipe, folder / "mid-config")
    build_controlnet(folder, unet)
    build_lora(folder, pipe)
    return ckpt, folder / "mid-config"


def build_lora(folder, pipe):
    """loras/mid-lora.safetensors: a random rank-4 LoRA on the U-Net's and the text encoder's
    attention, in the kohya layout (lora_unet_* / lora_te_*) that both tools read."""
    from tests.support.lora_files import make_peft_lora, peft_to_kohya
    peft = make_peft_lora(pipe, folder / "peft-lora" / "mid-lora.safetensors", seed=5, scale=0.05)
    (folder / "loras").mkdir(exist_ok=True)
    peft_to_kohya(peft, folder / "loras" / "mid-lora.safetensors")


def build_controlnet(folder, unet):
    """controlnet/mid-cn.safetensors (original layout, as control_v11p_sd15_* files) and its diffusers
    config in mid-cn-config/ (our single-file loads read it in place of SD 1.5's)."""
    from tests.support.controlnets import save_single_file, tiny_controlnet
    net = tiny_controlnet(unet, 1)
    (folder / "controlnet").mkdir(exist_ok=True)
    save_single_file(net, unet, folder / "controlnet" / "mid-cn.safetensors")
    net.save_config(folder / "mid-cn-config")


def build_images(folder):
    """control.png (another aspect than the output: cropped) and source.png (RGBA, 76x68: cropped to
    multiples of 8; its transparent square is LoadImage's mask)."""
    import torch
    from PIL import Image
    gen = torch.Generator().manual_seed(3)
    pixels = (torch.rand(40, 72, 3, generator=gen) * 255).to(torch.uint8).numpy()  # another aspect: cropped
    Image.fromarray(pixels).save(folder / "control.png")
    rgba = (torch.rand(68, 76, 4, generator=gen) * 255).to(torch.uint8)
    rgba[..., 3] = 255
    rgba[20:50, 16:44, 3] = 0  # transparent: LoadImage's mask (1 - alpha) is 1 there
    Image.fromarray(rgba.numpy(), "RGBA").save(folder / "source.png")  # not a multiple of 8: cropped


def api_prompt(case, work=None):
    clip = ["4", 1]
    p = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "mid.safetensors"}}}
    model, positive, negative = ["4", 0], ["6", 0], ["7", 0]
    if case.get("lora"):
        name, strength_model, strength_clip = case["lora"]
        if strength_clip is None:
            p["24"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": name, "strength_model":
                                                                       strength_model, "model": model}}
        else:
            p["24"] = {"class_type": "LoraLoader", "inputs": {"lora_name": name, "strength_model": strength_model,
                                                              "strength_clip": strength_clip, "model": model,
                                                              "clip": clip}}
            clip = ["24", 1]
        model = ["24", 0]
    if case.get("rescale"):
        p["20"] = {"class_type": "RescaleCFG", "inputs": {"model": model, "multiplier": case["rescale"]}}
        model = ["20", 0]
    if case.get("control"):
        p["21"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": case["control"]}}
        p["22"] = {"class_type": "LoadImage", "inputs": {"image": str(work / case["control_image"])}}
        p["23"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": positive, "negative": negative, "control_net": ["21", 0], "image": ["22", 0],
            "strength": case["strength"], "start_percent": case["start"], "end_percent": case["end"]}}
        positive, negative = ["23", 0], ["23", 1]
    if case.get("clip_skip"):
        p["10"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -1 - case["clip_skip"],
                                                                "clip": clip}}
        clip = ["10", 0]
    p.update({
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": case["positive"], "clip": clip}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": case["negative"], "clip": clip}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": case["width"], "height": case["height"],
                                                           "batch_size": 1}},
        **_source(case, work),
        "3": {"class_type": "KSampler", "inputs": {
            "seed": case["seed"], "steps": case["steps"], "cfg": case["cfg"], "sampler_name": case["sampler"],
            "scheduler": case["scheduler"], "denoise": case.get("denoise", 1.0), "model": model,
            "positive": positive, "negative": negative,
            "latent_image": ["5", 0] if not case.get("source") else ["31", 2 if case["source"] == "inpaint_cond" else 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": case["name"], "images": ["8", 0]}},
    })
    if case.get("source") == "inpaint_cond":
        p["3"]["inputs"]["positive"], p["3"]["inputs"]["negative"] = ["31", 0], ["31", 1]
    if case.get("second"):
        _second_pass(p, case)
    if case.get("custom"):
        first = p["3"]["inputs"]
        p["35"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": case["sampler"]}}
        p["36"] = {"class_type": "BasicScheduler", "inputs": {"model": first["model"], "scheduler": case["scheduler"],
                                                              "steps": case["steps"], "denoise": first["denoise"]}}
        p["3"] = {"class_type": "SamplerCustom", "inputs": {
            "model": first["model"], "add_noise": True, "noise_seed": case["seed"], "cfg": case["cfg"],
            "positive": first["positive"], "negative": first["negative"], "sampler": ["35", 0], "sigmas": ["36", 0],
            "latent_image": first["latent_image"]}}
    return p


def _second_pass(p, case):
    """two_pass: KSamplerAdvanced to half the steps with leftover noise, then a second one from there;
    hires: the KSampler's latent upscaled 1.5x (nearest-exact), then a KSampler at denoise 0.55."""
    first = p["3"]["inputs"]
    if case["second"] == "two_pass":
        half = case["steps"] // 2
        common = {k: first[k] for k in ("steps", "cfg", "sampler_name", "scheduler", "model", "positive", "negative")}
        p["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
            **common, "add_noise": "enable", "noise_seed": case["seed"], "start_at_step": 0, "end_at_step": half,
            "return_with_leftover_noise": "enable", "latent_image": first["latent_image"]}}
        p["33"] = {"class_type": "KSamplerAdvanced", "inputs": {
            **common, "add_noise": "disable", "noise_seed": 0, "start_at_step": half, "end_at_step": 10000,
            "return_with_leftover_noise": "disable", "latent_image": ["3", 0]}}
    else:
        p["34"] = {"class_type": "LatentUpscaleBy", "inputs": {"samples": ["3", 0], "upscale_method": "nearest-exact",
                                                               "scale_by": 1.5}}
        p["33"] = {"class_type": "KSampler", "inputs": {**first, "seed": case["seed"] + 1, "denoise": 0.55,
                                                        "latent_image": ["34", 0]}}
    p["8"]["inputs"]["samples"] = ["33", 0]


def _source(case, work):
    """The latent of an img2img or inpaint case: node 30 loads source.png, node 31 makes the latent."""
    kind = case.get("source")
    if not kind:
        return {}
    out = {"30": {"class_type": "LoadImage", "inputs": {"image": str(work / "source.png")}}}
    pixels, vae, mask = ["30", 0], ["4", 2], ["30", 1]
    if kind == "vae":
        out["31"] = {"class_type": "VAEEncode", "inputs": {"pixels": pixels, "vae": vae}}
    elif kind == "inpaint":
        out["31"] = {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": pixels, "vae": vae, "mask": mask,
                                                                    "grow_mask_by": 6}}
    elif kind == "noise_mask":
        out["32"] = {"class_type": "VAEEncode", "inputs": {"pixels": pixels, "vae": vae}}
        out["31"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["32", 0], "mask": mask}}
    else:
        out["31"] = {"class_type": "InpaintModelConditioning", "inputs": {
            "positive": ["6", 0], "negative": ["7", 0], "pixels": pixels, "vae": vae, "mask": mask, "noise_mask": True}}
    return out


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def render_ours(work, config_dir, all_cases):
    from PIL import Image
    from latentloom.app.sd import controlnet
    from latentloom.app.session import Session
    controlnet.CONFIG_DIR = work / "mid-cn-config"  # the stand-in ControlNet's shape, in place of SD 1.5's
    session = Session(models_dirs=[work], output_dir=work / "ours", device="cpu")
    out = {}
    for case in all_cases:
        path = work / "prompts" / f"{case['name']}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(api_prompt(case, work)))
        prepared = session.load(path, [f"4.config={json.dumps(str(config_dir))}", '4.dtype="fp32"'])
        out[case["name"]] = np.array(Image.open(session.run(prepared).outputs[0]))
    return out


def comfy_arguments():
    """The options both ComfyUI comparisons take."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--comfyui", required=True, help="a ComfyUI checkout whose requirements are importable")
    ap.add_argument("--python", default=sys.executable, help="the Python that runs ComfyUI")
    ap.add_argument("--comfy-pythonpath", default="", help="PYTHONPATH for the ComfyUI process (its requirements)")
    ap.add_argument("--work", default="comfy-compare", help="scratch folder")
    return ap


def main(argv=None):
    ap = comfy_arguments()
    ap.add_argument("--only", default="", help="comma-separated case names (default: every case)")
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ckpt, config_dir = build_checkpoint(work)
    build_images(work)
    all_cases = cases()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {c["name"] for c in all_cases}
        if unknown:
            ap.error(f"no such case: {', '.join(sorted(unknown))}")
        all_cases = [c for c in all_cases if c["name"] in wanted]
    (work / "cases.json").write_text(json.dumps({"checkpoints": str(ckpt.parent), "checkpoint": ckpt.name,
                                                 "controlnets": str(work / "controlnet"), "work": str(work),
                                                 "loras": str(work / "loras"),
                                                 "cases": all_cases}))
    subprocess.run([args.python, str(ROOT / "benchmarks" / "comfy_render.py"), str(Path(args.comfyui).resolve()),
                    str(work / "cases.json"), str(work / "comfyui")], check=True, cwd=work,
                   env={**os.environ, "PYTHONPATH": args.comfy_pythonpath})
    ours = render_ours(work, config_dir, all_cases)
    from PIL import Image
    rows = []
    for case in all_cases:
        theirs = np.array(Image.open(work / "comfyui" / f"{case['name']}.png"))
        rows.append({"case": case["name"], "psnr_db": round(psnr(ours[case["name"]], theirs), 2),
                     "equal": bool(np.array_equal(ours[case["name"]], theirs))})
        print(f"{case['name']:32s} {rows[-1]['psnr_db']:7.2f} dB{'  (identical)' if rows[-1]['equal'] else ''}")
    (work / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
