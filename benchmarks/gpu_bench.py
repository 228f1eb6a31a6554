"""The GPU benchmark of issue #11, one command on a CUDA machine (a few minutes):

    python -m benchmarks.gpu_bench --json benchmarks/results/<gpu>-gpu-bench.json

SD 1.5 (random weights from resources/sd15), 512x512, 25 Euler steps, CFG 7.5, fp16, end to end
(text encoding, sampling, VAE decode and PNG write), batch 1 and batch 8. Measured in one run:
- diffusers eager, diffusers compiled (channels_last, fused QKV, torch.compile U-Net and VAE
  decode), Latent Loom eager and Latent Loom --compile: seconds per image, images/s;
- compile time; dynamo graphs added by seed, prompt, CFG and LoRA-strength edits (goal: 0);
- PSNR of compiled images against eager (goal >= 40 dB);
- a LoRA run against a plain run with --compile (goal <= 1.05);
- peak GPU memory with --lowvram (goal <= 2.5 GiB), and the cost of previews.

--dry-run runs every measure on the tiny model on the CPU (dynamo's eager backend, 64x64,
2 steps) so the script is tested without a GPU.
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

PROMPT, NEGATIVE = "a lighthouse at sunset, detailed oil painting", "blurry"


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


_seeds = iter(range(1000, 10**9))


def timed(fn, runs, device):
    """Median seconds of fn(seed); every call gets a seed never used before (no cached sampler)."""
    times = []
    for _ in range(runs):
        sync(device)
        t0 = time.perf_counter()
        fn(next(_seeds))
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def psnr(a, b):
    import numpy as np
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def graphs():
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


class Diffusers:
    """StableDiffusionPipeline, writing PNGs as the engine does (end to end)."""

    def __init__(self, model, cfg, compiled, backend):
        import diffusers
        from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
        self.cfg, self.out = cfg, Path(cfg.tmp) / ("diffusers-compiled" if compiled else "diffusers-eager")
        self.out.mkdir(parents=True, exist_ok=True)
        pipe = diffusers.StableDiffusionPipeline.from_pretrained(model, dtype=cfg.dtype, safety_checker=None,
                                                                 requires_safety_checker=False).to(cfg.device)
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler = getattr(diffusers, SCHEDULERS["euler"][0]).from_config(pipe.scheduler.config,
                                                                                **overrides("euler"))
        if compiled:
            pipe.fuse_qkv_projections(unet=True, vae=False)
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
            pipe.unet = torch.compile(pipe.unet, backend=backend)
            pipe.vae.decode = torch.compile(pipe.vae.decode, backend=backend)
        self.pipe = pipe

    def __call__(self, seed, batch):
        images = self.pipe(PROMPT, negative_prompt=NEGATIVE, height=self.cfg.res, width=self.cfg.res,
                           num_inference_steps=self.cfg.steps, guidance_scale=7.5, num_images_per_prompt=batch,
                           generator=torch.Generator("cpu").manual_seed(seed)).images
        for i, im in enumerate(images):
            im.save(self.out / f"{seed}_{i}.png")
        return images


class Ours:
    def __init__(self, model, cfg, compile=False, lowvram=False, previews=False, name="ours"):
        from latentloom.app.engine.executor import Engine
        from latentloom.app.sd.runtime import Runtime
        from latentloom.nodes import catalog
        self.cfg, self.model = cfg, model
        self.env = Runtime(cfg.device, compile=compile, lowvram=lowvram)
        self.engine = Engine(catalog, output_dir=Path(cfg.tmp) / name, env=self.env, previews=previews)

    def __call__(self, seed, batch, lora=None, **sets):
        from PIL import Image
        from latentloom.app.core.validate import load
        from latentloom.app.session.overrides import apply_sets
        from latentloom.nodes import catalog
        doc = json.loads((ROOT / "workflows" / ("lora.json" if lora else "txt2img.json")).read_text())
        values = {"ckpt.path": str(self.model), "ckpt.dtype": self.cfg.dtype_name, "positive.text": PROMPT,
                  "negative.text": NEGATIVE, "latent.width": self.cfg.res, "latent.height": self.cfg.res,
                  "latent.batch_size": batch, "sampler.steps": self.cfg.steps, "sampler.cfg": 7.5,
                  "scheduler.name": "euler", "noise.seed": seed, **sets}
        if lora:
            values.update({"lora.path": str(lora[0]), "lora.strength_model": lora[1], "lora.strength_clip": 1.0})
        problems, _ = apply_sets(doc, [f"{k}={json.dumps(v)}" for k, v in values.items()])
        assert not problems, problems
        result = self.engine.run(load(doc, catalog))
        return [Image.open(p).convert("RGB") for p in result.outputs]


def measure_batch(cfg, batch, sides, runs):
    """Seconds per image for each side (median of runs, new seed each run)."""
    out = {}
    for name, fn in sides.items():
        t0 = time.perf_counter()
        fn(0, batch)  # warm-up; compiles on the first call of a compiled side
        first = time.perf_counter() - t0
        per_run = timed(lambda s: fn(s, batch), runs, cfg.device)
        out[name] = {"first_call_s": first, "s_per_image": per_run / batch, "images_per_s": batch / per_run}
        print(f"  batch {batch} {name}: {per_run / batch:.4f} s/image", file=sys.stderr, flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny model on the CPU: checks the script runs")
    ap.add_argument("--res", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batches", type=int, nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-diffusers-compiled", action="store_true", help="skip compiling diffusers (saves minutes)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    dry = args.dry_run
    cfg = argparse.Namespace(device="cpu" if dry else "cuda", res=args.res or (64 if dry else 512),
                             steps=args.steps or (2 if dry else 25), dtype=torch.float32 if dry else torch.float16,
                             dtype_name="fp32" if dry else "fp16")
    batches = args.batches or ([1, 2] if dry else [1, 8])
    runs = 1 if dry else args.runs
    backend = "eager" if dry else "inductor"
    if not dry and not torch.cuda.is_available():
        print("gpu_bench: no CUDA device (use --dry-run to check the script on the CPU)", file=sys.stderr)
        return 2
    from benchmarks.bench import build_model
    from tests.support.lora_files import make_peft_lora
    results = {"benchmark": "gpu_bench", "dry_run": dry, "device": torch.cuda.get_device_name() if not dry else "cpu",
               "torch": torch.__version__, "res": cfg.res, "steps": cfg.steps, "scheduler": "euler", "cfg": 7.5,
               "dtype": cfg.dtype_name, "compile_backend": backend, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        cfg.tmp = tmp
        model = Path(tmp) / "model"
        build_model("tiny" if dry else "sd15", model, cfg.dtype)
        lora_file = make_peft_lora(model, Path(tmp) / "lora.safetensors", seed=1, scale=0.05)

        eager = Ours(model, cfg, name="eager")
        t0 = time.perf_counter()
        compiled = Ours(model, cfg, compile=backend, name="compiled")
        compiled(0, 1)
        results["compile_s"] = time.perf_counter() - t0
        sides = {"diffusers_eager": Diffusers(model, cfg, False, backend), "latentloom_eager": eager,
                 "latentloom_compiled": compiled}
        if not args.no_diffusers_compiled:
            sides["diffusers_compiled"] = Diffusers(model, cfg, True, backend)
        results["batches"] = {str(b): measure_batch(cfg, b, sides, runs) for b in batches}

        # Graph reuse: edits of seed, prompt, CFG and LoRA strength must add no dynamo graph.
        compiled(1, 1, lora=(lora_file, 1.0))  # LoRA layers injected: new modules, compiled once
        compiled(1, 1)                         # adapters off: compiled once (then both are cached)
        before = graphs()
        compiled(2, 1)
        compiled(3, 1, **{"positive.text": "a red fox in the snow"})
        compiled(4, 1, **{"sampler.cfg": 5.0})
        compiled(5, 1, lora=(lora_file, 1.0))
        compiled(6, 1, lora=(lora_file, 0.5))
        results["dynamo_graphs_added_by_edits"] = graphs() - before
        results["dynamo_unique_graphs_total"] = graphs()

        plain = timed(lambda s: compiled(s, 1), runs, cfg.device)
        compiled(7, 1, lora=(lora_file, 0.75))  # the stack, fused once; then seed edits as for plain
        with_lora = timed(lambda s: compiled(s, 1, lora=(lora_file, 0.75)), runs, cfg.device)
        results["lora_vs_plain_compiled"] = with_lora / plain

        results["psnr_compiled_vs_eager_db"] = psnr(compiled(42, 1)[0], eager(42, 1)[0])
        if "diffusers_compiled" in sides:
            results["psnr_diffusers_compiled_vs_eager_db"] = psnr(sides["diffusers_compiled"](42, 1)[0],
                                                                 sides["diffusers_eager"](42, 1)[0])
        previews = Ours(model, cfg, previews=True, name="previews")
        previews(0, 1)
        results["previews_vs_none_eager"] = timed(lambda s: previews(s, 1), runs, cfg.device) / timed(
            lambda s: eager(s, 1), runs, cfg.device)

        sides = eager = compiled = previews = None  # free the GPU for the --lowvram measure
        if not dry:
            import gc
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        low = Ours(model, cfg, lowvram=True, name="lowvram")
        low(0, 1)
        results["lowvram_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if not dry else None
        results["lowvram_s_per_image"] = timed(lambda s: low(s, 1), runs, cfg.device)
    b1 = results["batches"][str(batches[0])]
    results["goals"] = {
        "batch1_s_per_image<=0.25": b1["latentloom_compiled"]["s_per_image"],
        "batch8_images_per_s>=12": results["batches"].get("8", {}).get("latentloom_compiled", {}).get("images_per_s"),
        "psnr_compiled_vs_eager>=40": results["psnr_compiled_vs_eager_db"],
        "lora_vs_plain<=1.05": results["lora_vs_plain_compiled"],
        "lowvram_peak_gib<=2.5": results["lowvram_peak_gib"],
        "dynamo_graphs_added_by_edits==0": results["dynamo_graphs_added_by_edits"]}
    text = json.dumps(results, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
