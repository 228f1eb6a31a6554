"""ComfyUI's conditioning nodes (concat, average, zero out, combine, timestep range, areas, masks,
and several entries under a ControlNet) rendered by ComfyUI itself and by Latent Loom from the same API prompt: PSNR per case.

    python -m benchmarks.comfy_conditioning --comfyui ~/src/ComfyUI [--comfy-pythonpath DEPS] --work /tmp/cmp

Uses benchmarks/comfy_compare.py's random-weight SD 1.5-like checkpoint. ComfyUI runs in a separate
process (this file with --comfy-side: ComfyUI's node classes evaluate the prompt, none of this
repository is imported there), `--cpu --force-fp32 --fp32-text-enc`; its image is saved with
SaveImage's truncating conversion.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

A = "a (red:1.3) fox in the snow, detailed"
LONG = "a castle on a hill at sunset, " + ", ".join(f"word{i}" for i in range(60))  # over 77 tokens


def _c(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


def prompt(mask_path, nodes, pos="6", neg="7", cfg=6.0, sampler="euler", scheduler="normal", w=64, h=64):
    p = {"4": _c("CheckpointLoaderSimple", ckpt_name="mid.safetensors"),
         "6": _c("CLIPTextEncode", text=A, clip=["4", 1]), "7": _c("CLIPTextEncode", text="blurry", clip=["4", 1]),
         "12": _c("CLIPTextEncode", text=LONG, clip=["4", 1]),
         "13": _c("CLIPTextEncode", text="a blue bird", clip=["4", 1]),
         "20": _c("LoadImage", image=str(mask_path)), "5": _c("EmptyLatentImage", width=w, height=h, batch_size=1),
         **nodes}
    p["3"] = _c("KSampler", seed=7, steps=6, cfg=cfg, sampler_name=sampler, scheduler=scheduler, denoise=1.0,
                model=["4", 0], positive=[pos, 0], negative=[neg, 1 if neg == pos else 0], latent_image=["5", 0])
    p["8"] = _c("VAEDecode", samples=["3", 0], vae=["4", 2])
    p["9"] = _c("SaveImage", filename_prefix="cond", images=["8", 0])
    return p


def combined(extra, second="30"):
    return {**extra, "31": _c("ConditioningCombine", conditioning_1=["6", 0], conditioning_2=[second, 0])}


def cases(mask, control_image):
    return {
        "concat": prompt(mask, {"30": _c("ConditioningConcat", conditioning_to=["6", 0], conditioning_from=["13", 0])},
                         pos="30"),
        "average, from zero-padded": prompt(mask, {"30": _c("ConditioningAverage", conditioning_to=["12", 0],
                                                            conditioning_from=["6", 0], conditioning_to_strength=0.3)},
                                            pos="30"),
        "average, from cut": prompt(mask, {"30": _c("ConditioningAverage", conditioning_to=["6", 0],
                                                    conditioning_from=["12", 0], conditioning_to_strength=0.6)},
                                    pos="30"),
        "zero out (negative)": prompt(mask, {"30": _c("ConditioningZeroOut", conditioning=["7", 0])}, neg="30"),
        "combine, strength 0.5": prompt(mask, combined({"30": _c("ConditioningSetAreaStrength",
                                                                 conditioning=["12", 0], strength=0.5)}), pos="31"),
        "combine, cfg 1": prompt(mask, combined({}, "13"), pos="31", cfg=1.0),
        "timestep ranges, heun karras": prompt(mask, {
            "30": _c("ConditioningSetTimestepRange", conditioning=["6", 0], start=0.0, end=0.4),
            "32": _c("ConditioningSetTimestepRange", conditioning=["13", 0], start=0.4, end=1.0),
            "31": _c("ConditioningCombine", conditioning_1=["30", 0], conditioning_2=["32", 0])},
            pos="31", sampler="heun", scheduler="karras"),
        "area": prompt(mask, combined({"30": _c("ConditioningSetArea", conditioning=["13", 0], width=64, height=64,
                                                x=64, y=32, strength=0.8)}), pos="31", w=128, h=128),
        "area percentage": prompt(mask, combined({"30": _c("ConditioningSetAreaPercentage", conditioning=["13", 0],
                                                           width=0.5, height=0.7, x=0.5, y=0.1, strength=1.0)}),
                                  pos="31", w=128, h=96),
        "mask": prompt(mask, combined({"30": _c("ConditioningSetMask", conditioning=["13", 0], mask=["20", 1],
                                                strength=0.7, set_cond_area="default")}), pos="31", w=128, h=128),
        "mask bounds": prompt(mask, combined({"30": _c("ConditioningSetMask", conditioning=["13", 0], mask=["20", 1],
                                                       strength=0.7, set_cond_area="mask bounds")}),
                              pos="31", w=128, h=128),
        "area on the negative": prompt(mask, {
            "30": _c("ConditioningSetArea", conditioning=["13", 0], width=64, height=128, x=0, y=0, strength=1.0),
            "31": _c("ConditioningCombine", conditioning_1=["7", 0], conditioning_2=["30", 0])},
            neg="31", w=128, h=128),
        "combine + timestep range, then a ControlNet": prompt(mask, {
            "30": _c("ConditioningSetTimestepRange", conditioning=["13", 0], start=0.3, end=1.0),
            "31": _c("ConditioningCombine", conditioning_1=["6", 0], conditioning_2=["30", 0]),
            "40": _c("ControlNetLoader", control_net_name="mid-cn.safetensors"),
            "41": _c("LoadImage", image=str(control_image)),
            "42": _c("ControlNetApplyAdvanced", positive=["31", 0], negative=["7", 0], control_net=["40", 0],
                     image=["41", 0], strength=0.8, start_percent=0.1, end_percent=0.8)},
            pos="42", neg="42"),
    }


def write_mask(path):
    """A 128x128 RGBA image whose alpha is 0 in a rectangle and half in a smaller one (mask = 1 - alpha)."""
    from PIL import Image
    alpha = np.full((128, 128), 255, np.uint8)
    alpha[31:90, 21:70] = 0
    alpha[41:60, 31:50] = 128
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 100, alpha
    Image.fromarray(rgba, "RGBA").save(path)


def comfy_side(comfy_dir, cases_path, out_dir):
    sys.argv = ["main.py", "--cpu", "--force-fp32", "--fp32-text-enc"]
    sys.path.insert(0, comfy_dir)
    import comfy.options
    comfy.options.enable_args_parsing()
    import torch
    from PIL import Image
    import folder_paths
    import nodes
    spec = json.loads(Path(cases_path).read_text())
    folder_paths.add_model_folder_path("checkpoints", spec["checkpoints"])
    folder_paths.add_model_folder_path("controlnet", spec["controlnets"])
    for i, (name, p) in enumerate(spec["cases"].items()):
        done = {}

        def value(nid):
            if nid not in done:
                cls = nodes.NODE_CLASS_MAPPINGS[p[nid]["class_type"]]
                kw = {k: value(v[0])[v[1]] if isinstance(v, list) else v for k, v in p[nid]["inputs"].items()}
                done[nid] = getattr(cls(), cls.FUNCTION)(**kw)
            return done[nid]
        with torch.inference_mode():
            image = value("8")[0]
        array = np.clip(255.0 * image[0].cpu().numpy(), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(Path(out_dir) / f"{i}.png")
        print(name, flush=True)


def main(argv=None):
    from benchmarks.comfy_compare import build_checkpoint, build_images, comfy_arguments, psnr
    args = comfy_arguments().parse_args(argv)
    work = Path(args.work).resolve()
    (work / "conditioning" / "comfyui").mkdir(parents=True, exist_ok=True)
    ckpt, config_dir = build_checkpoint(work)
    mask = work / "conditioning" / "mask.png"
    write_mask(mask)
    build_images(work)
    all_cases = cases(mask, work / "control.png")
    spec = work / "conditioning" / "cases.json"
    spec.write_text(json.dumps({"checkpoints": str(ckpt.parent), "controlnets": str(work / "controlnet"),
                                "cases": all_cases}))
    subprocess.run([args.python, __file__, "--comfy-side", str(Path(args.comfyui).resolve()), str(spec),
                    str(work / "conditioning" / "comfyui")], check=True, cwd=work,
                   env={**os.environ, "PYTHONPATH": args.comfy_pythonpath})
    from PIL import Image
    from latentloom.app.sd import controlnet
    from latentloom.app.session import Session
    controlnet.CONFIG_DIR = work / "mid-cn-config"  # the stand-in ControlNet's shape, as comfy_compare
    session = Session(models_dirs=[work], output_dir=work / "conditioning" / "ours", device="cpu")
    rows = []
    for i, (name, p) in enumerate(all_cases.items()):
        path = work / "conditioning" / f"{i}.json"
        path.write_text(json.dumps(p))
        prepared = session.load(path, [f"4.config={json.dumps(str(config_dir))}", '4.dtype="fp32"'])
        ours = np.array(Image.open(session.run(prepared).outputs[0]))
        theirs = np.array(Image.open(work / "conditioning" / "comfyui" / f"{i}.png"))
        rows.append({"case": name, "psnr_db": round(psnr(ours, theirs), 2), "equal": bool(np.array_equal(ours, theirs))})
        print(f"{name:32s} {rows[-1]['psnr_db']:7.2f} dB{'  (identical)' if rows[-1]['equal'] else ''}", flush=True)
    (work / "conditioning" / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--comfy-side"]:
        comfy_side(*sys.argv[2:5])
    else:
        main()
