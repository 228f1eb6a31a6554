"""Render cases with ComfyUI's own nodes (run by benchmarks/comfy_compare.py in a separate process,
with a ComfyUI checkout first on sys.path; none of this repository is imported here).

    python benchmarks/comfy_render.py COMFYUI_DIR CASES_JSON OUT_DIR
"""
import json
import sys
from pathlib import Path


def main(comfy_dir, cases_path, out_dir):
    sys.argv = ["main.py", "--cpu", "--force-fp32", "--fp32-text-enc"]
    sys.path.insert(0, comfy_dir)
    import comfy.options
    comfy.options.enable_args_parsing()
    import numpy as np
    import torch
    from PIL import Image
    import folder_paths
    import nodes
    cases = json.loads(Path(cases_path).read_text())
    folder_paths.add_model_folder_path("checkpoints", cases["checkpoints"])
    if "controlnets" in cases:
        folder_paths.add_model_folder_path("controlnet", cases["controlnets"])
    if "loras" in cases:
        folder_paths.add_model_folder_path("loras", cases["loras"])
    model, clip, vae = nodes.CheckpointLoaderSimple().load_checkpoint(cases["checkpoint"])[:3]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for case in cases["cases"]:
        with torch.inference_mode():  # as ComfyUI's executor runs nodes
            render(nodes, model, clip, vae, case, out, np, Image, Path(cases.get("work", ".")))
        print(case["name"], flush=True)


def render(nodes, model, clip, vae, case, out, np, Image, work):
    import torch
    if case.get("lora"):
        name, strength_model, strength_clip = case["lora"]
        if strength_clip is None:
            model = nodes.LoraLoaderModelOnly().load_lora_model_only(model, name, strength_model)[0]
        else:
            model, clip = nodes.LoraLoader().load_lora(model, clip, name, strength_model, strength_clip)
    if case.get("clip_skip"):
        clip = nodes.CLIPSetLastLayer().set_last_layer(clip, -1 - case["clip_skip"])[0]
    pos = nodes.CLIPTextEncode().encode(clip, case["positive"])[0]
    neg = nodes.CLIPTextEncode().encode(clip, case["negative"])[0]
    if case.get("rescale"):
        from comfy_extras.nodes_model_advanced import RescaleCFG
        model = RescaleCFG().patch(model, case["rescale"])[0]
    if case.get("control"):
        net = nodes.ControlNetLoader().load_controlnet(case["control"])[0]
        pixels = np.array(Image.open(work / case["control_image"]).convert("RGB")).astype(np.float32) / 255.0
        image = torch.from_numpy(pixels)[None,]  # as LoadImage gives it
        pos, neg = nodes.ControlNetApplyAdvanced().apply_controlnet(pos, neg, net, image, case["strength"],
                                                                    case["start"], case["end"])[:2]
    latent = nodes.EmptyLatentImage().generate(case["width"], case["height"], 1)[0]
    if case.get("source"):
        pos, neg, latent = source(nodes, vae, pos, neg, case["source"], work)
    args = (case["steps"], case["cfg"], case["sampler"], case["scheduler"], pos, neg)
    if case.get("custom"):
        from comfy_extras.nodes_custom_sampler import BasicScheduler, KSamplerSelect, SamplerCustom
        sampler = KSamplerSelect().get_sampler(case["sampler"])[0]
        sigmas = BasicScheduler().get_sigmas(model, case["scheduler"], case["steps"], case.get("denoise", 1.0))[0]
        samples = SamplerCustom().sample(model, True, case["seed"], case["cfg"], pos, neg, sampler, sigmas, latent)[0]
    elif case.get("second") == "two_pass":
        half = case["steps"] // 2
        first = nodes.KSamplerAdvanced().sample(model, "enable", case["seed"], *args, latent, 0, half, "enable")[0]
        samples = nodes.KSamplerAdvanced().sample(model, "disable", 0, *args, first, half, 10000, "disable")[0]
    else:
        samples = nodes.common_ksampler(model, case["seed"], *args, latent, denoise=case.get("denoise", 1.0))[0]
    if case.get("second") == "hires":
        bigger = nodes.LatentUpscaleBy().upscale(samples, "nearest-exact", 1.5)[0]
        samples = nodes.common_ksampler(model, case["seed"] + 1, *args, bigger, denoise=0.55)[0]
    image = nodes.VAEDecode().decode(vae, samples)[0]
    array = np.clip(255.0 * image[0].cpu().numpy(), 0, 255).astype(np.uint8)  # SaveImage's conversion
    Image.fromarray(array).save(out / f"{case['name']}.png")


def source(nodes, vae, pos, neg, kind, work):
    import folder_paths
    folder_paths.set_input_directory(str(work))
    pixels, mask = nodes.LoadImage().load_image("source.png")[:2]
    if kind == "vae":
        return pos, neg, nodes.VAEEncode().encode(vae, pixels)[0]
    if kind == "inpaint":
        return pos, neg, nodes.VAEEncodeForInpaint().encode(vae, pixels, mask, 6)[0]
    if kind == "noise_mask":
        return pos, neg, nodes.SetLatentNoiseMask().set_mask(nodes.VAEEncode().encode(vae, pixels)[0], mask)[0]
    return nodes.InpaintModelConditioning().encode(pos, neg, pixels, vae, mask, True)[:3]


if __name__ == "__main__":
    main(*sys.argv[1:4])
