"""Latent Loom vs diffusers' StableDiffusionPipeline on the same random-weight model, same run.

    python -m benchmarks.bench                      # tiny model, CPU: a quick smoke benchmark
    python -m benchmarks.bench --model sd15 --device cuda --res 512 --steps 25

--model sd15 builds a full-size SD 1.5 (random weights, from resources/sd15 configs), so the
numbers reflect real compute without downloading anything. Reports seconds per image and,
on CUDA, peak memory, with ratios Latent Loom / diffusers (lower is better).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(kind, path, dtype):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    if kind == "tiny":
        from tests.tiny import tiny_pipeline
        pipe = tiny_pipeline()
    else:
        cfg = ROOT / "resources" / "sd15"
        from diffusers import PNDMScheduler
        torch.manual_seed(0)
        pipe = StableDiffusionPipeline(
            unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet")),
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae")),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder")),
            tokenizer=CLIPTokenizer.from_pretrained(cfg / "tokenizer"),
            scheduler=PNDMScheduler.from_pretrained(cfg / "scheduler"),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(dtype=dtype)
    pipe.save_pretrained(path, safe_serialization=True)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, runs, device):
    times = []
    for i in range(runs):
        sync(device)
        t0 = time.perf_counter()
        fn(i)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak(fn, device):
    if device != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn(1000)
    sync(device)
    return torch.cuda.max_memory_allocated() / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "sd15"], default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--scheduler", default="euler")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)

    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.device import pick_device
    from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
    from diffusers import StableDiffusionPipeline
    import diffusers
    from latentloom.nodes import catalog
    from tests.conftest import load_workflow

    device = pick_device(args.device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    prompt, negative = "a lighthouse at sunset, detailed oil painting", "blurry"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        t0 = time.perf_counter()
        build_model(args.model, model, dtype)
        print(f"built {args.model} model in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        pipe = StableDiffusionPipeline.from_pretrained(model, dtype=dtype, safety_checker=None,
                                                       requires_safety_checker=False).to(device)
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler = getattr(diffusers, SCHEDULERS[args.scheduler][0]).from_config(
            pipe.scheduler.config, **overrides(args.scheduler))

        def run_diffusers(i):
            pipe(prompt, negative_prompt=negative, height=args.res, width=args.res, num_inference_steps=args.steps,
                 guidance_scale=7.5, generator=torch.Generator("cpu").manual_seed(i))

        from latentloom.app.sd.runtime import Runtime
        engine = Engine(catalog, output_dir=Path(tmp) / "out", env=Runtime(device), previews=False)
        sets = {"ckpt.path": str(model), "ckpt.dtype": "fp16" if dtype == torch.float16 else "fp32",
                "positive.text": prompt, "negative.text": negative, "latent.width": args.res,
                "latent.height": args.res, "sampler.steps": args.steps, "scheduler.name": args.scheduler}

        def run_ours(i, cold=False):
            if cold:
                engine.cache.clear()
            engine.run(load_workflow("txt2img.json", **sets, **{"noise.seed": i}))

        run_diffusers(0)
        run_ours(0)  # warm-up: loads the checkpoint once
        results = {
            "model": args.model, "device": device, "dtype": str(dtype), "res": args.res, "steps": args.steps,
            "scheduler": args.scheduler,
            "diffusers_s": timed(run_diffusers, args.runs, device),
            # A new seed each run: the sampler, decode and save re-run; prompts come from the cache.
            "latentloom_s": timed(run_ours, args.runs, device),
            # Cold cache: every node runs, as diffusers does (the checkpoint stays loaded in both).
            "latentloom_cold_s": timed(lambda i: run_ours(i, cold=True), args.runs, device),
            "diffusers_peak_mib": peak(run_diffusers, device),
            "latentloom_peak_mib": peak(lambda i: run_ours(i, cold=True), device),
        }
    results["ratio"] = results["latentloom_s"] / results["diffusers_s"]
    results["ratio_cold"] = results["latentloom_cold_s"] / results["diffusers_s"]
    if results["diffusers_peak_mib"]:
        results["ratio_peak_memory"] = results["latentloom_peak_mib"] / results["diffusers_peak_mib"]
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
