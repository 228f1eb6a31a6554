"""The CPU speed benchmark: Latent Loom in dtype auto (and bf16, fp32, --compile) against
diffusers' warm fp32 pipeline, at SD 1.5 size with random weights, in one command:

    python -m benchmarks.cpu_bf16 [--compile] [--json benchmarks/results/cpu-sd15-256-4steps.json]

256x256, 4 steps of DPM++ 2M Karras, CFG 7.5. Every side runs in its own subprocess, one after
the other, so each peak RSS is its own and two models never share the RAM. Reported:
- seed-edit re-run (a new seed; the prompts come from the cache) and cold run (the cache cleared,
  the checkpoint loaded, as diffusers' warm run has it), as ratios to diffusers' warm fp32 run;
- peak RSS of each process (ru_maxrss);
- PSNR of the bf16 image against the fp32 one (same seed), and whether fp32 equals diffusers;
- with --compile: the compiled seed-edit time, its gain over eager, and the compile time;
- the load average around each phase: the machine may be shared.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT, NEGATIVE = "a lighthouse at sunset, detailed oil painting", "blurry"
RES, STEPS, CFG, SCHEDULER, SIGMAS = 256, 4, 7.5, "dpmpp_2m", "karras"
TARGETS = {"seed_edit_ratio": 0.40, "cold_ratio": 0.45, "rss_ratio": 1.0}


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn, seeds):
    times = []
    for s in seeds:
        t0 = time.perf_counter()
        fn(s)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


# -- phases (each in its own process) ----------------------------------------------------------------
def phase_diffusers(model, out, runs):
    import numpy as np
    import torch
    import diffusers
    from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
    t0 = time.perf_counter()
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[SCHEDULER][0]).from_config(
        pipe.scheduler.config, **overrides(SCHEDULER, SIGMAS))
    load_s = time.perf_counter() - t0

    def run(seed):
        return pipe(PROMPT, negative_prompt=NEGATIVE, height=RES, width=RES, num_inference_steps=STEPS,
                    guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    np.save(out.with_suffix(".npy"), np.array(run(0)))  # also the warm-up
    warm, times = median_time(run, range(1, runs + 1))
    return {"load_s": load_s, "warm_s": warm, "warm_runs_s": times, "peak_rss_mib": rss_mib()}


def phase_ours(model, out, runs, dtype, compile):
    import numpy as np
    from PIL import Image
    from latentloom.app.engine import events as ev
    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.runtime import Runtime
    from latentloom.nodes import catalog
    from tests.conftest import load_workflow
    logs = []
    env = Runtime("cpu", compile=compile)
    engine = Engine(catalog, output_dir=out.parent / (out.stem + "-images"), env=env, previews=False)
    sets = {"ckpt.path": str(model), "ckpt.dtype": dtype, "positive.text": PROMPT, "negative.text": NEGATIVE,
            "latent.width": RES, "latent.height": RES, "sampler.steps": STEPS, "sampler.cfg": CFG,
            "scheduler.name": SCHEDULER, "scheduler.sigmas": SIGMAS}

    def run(seed, cold=False):
        if cold:
            engine.cache.clear()
        return engine.run(load_workflow("txt2img.json", **sets, **{"noise.seed": seed}),
                          on_event=lambda e: logs.append(e.message) if isinstance(e, ev.NodeLog) else None)
    t0 = time.perf_counter()
    env.load_checkpoint("bench", str(model), "", dtype)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = run(0)  # the first run: compiles with --compile
    first_s = time.perf_counter() - t0
    np.save(out.with_suffix(".npy"), np.array(Image.open(first.outputs[0]).convert("RGB")))
    seed_edit, seed_times = median_time(run, range(1, runs + 1))
    cold, cold_times = median_time(lambda s: run(s, cold=True), range(100, 100 + max(1, runs - 1)))
    from torch._dynamo.utils import counters
    return {"dtype": dtype, "compile": bool(compile), "log": list(dict.fromkeys(logs)), "load_s": load_s, "first_run_s": first_s,
            "seed_edit_s": seed_edit, "seed_edit_runs_s": seed_times, "cold_s": cold, "cold_runs_s": cold_times,
            "compile_s": max(0.0, first_s - cold) if compile else None,
            "dynamo_unique_graphs": counters["stats"]["unique_graphs"], "peak_rss_mib": rss_mib()}


# -- the lead process ----------------------------------------------------------------------------------
def psnr(a, b):
    import numpy as np
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def run_phase(tmp, model, name, args, extra=()):
    out = Path(tmp) / f"{name}.json"
    cmd = [sys.executable, "-m", "benchmarks.cpu_bf16", "--phase", name.split("-")[0], "--model", str(model),
           "--out", str(out), "--runs", str(args.runs), "--res", str(args.res), *extra]
    load = os.getloadavg()
    t0 = time.perf_counter()
    print(f"phase {name} (load {load[0]:.1f})...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    data = json.loads(out.read_text())
    data.update(phase_wall_s=time.perf_counter() - t0, loadavg_before=load[0], loadavg_after=os.getloadavg()[0])
    print(f"  {json.dumps({k: v for k, v in data.items() if not isinstance(v, list)})}", file=sys.stderr)
    return data


def main(argv=None):
    global RES
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compile", action="store_true", help="also measure --compile (torch.compile, inductor)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measure (median)")
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    ap.add_argument("--model-dir", help="keep the random SD 1.5 here and reuse it (default: a temp folder)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the explicit bf16 phase")
    ap.add_argument("--kind", choices=["sd15", "tiny"], default="sd15", help="tiny: a quick smoke run")
    ap.add_argument("--res", type=int, default=RES)
    ap.add_argument("--assemble", metavar="DIR", help="only build the report from the phase files in DIR "
                    "(an interrupted run's temp folder)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    RES = args.res
    if args.phase:
        out = Path(args.out)
        if args.phase == "diffusers":
            data = phase_diffusers(args.model, out, args.runs)
        else:
            data = phase_ours(args.model, out, args.runs, args.dtype, args.compile)
        out.write_text(json.dumps(data))
        return 0

    from benchmarks.bench import build_model
    import torch
    from latentloom.app.sd import speed
    if args.assemble:
        auto_dtype, why = speed.choose_dtype("auto", "cpu")
        phases = {name: json.loads((Path(args.assemble) / f"{file}.json").read_text())
                  for name, file in (("diffusers", "diffusers"), ("auto", "ours-auto"), ("fp32", "ours-fp32"),
                                     ("bf16", "ours-bf16"), ("auto_compiled", "ours-compiled"))
                  if (Path(args.assemble) / f"{file}.json").exists()}
        args.compile = "auto_compiled" in phases
        result = assemble(args.assemble, phases, "bf16" if auto_dtype == torch.bfloat16 else "fp32", why, args)
        return _write(result, args)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model_dir) if args.model_dir else Path(tmp) / "sd15"
        if not (model / "model_index.json").exists():
            t0 = time.perf_counter()
            build_model(args.kind, model, torch.float32)
            print(f"built a random {args.kind} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        auto_dtype, why = speed.choose_dtype("auto", "cpu")
        auto = "bf16" if auto_dtype == torch.bfloat16 else "fp32"
        phases = {"diffusers": run_phase(tmp, model, "diffusers", args),
                  "auto": run_phase(tmp, model, "ours-auto", args, ["--dtype", "auto"])}
        if auto != "fp32":
            phases["fp32"] = run_phase(tmp, model, "ours-fp32", args, ["--dtype", "fp32"])
        if auto != "bf16" and not args.no_bf16:
            phases["bf16"] = run_phase(tmp, model, "ours-bf16", args, ["--dtype", "bf16"])
        if args.compile:
            phases["auto_compiled"] = run_phase(tmp, model, "ours-compiled", args, ["--dtype", "auto", "--compile"])
        result = assemble(tmp, phases, auto, why, args)
    return _write(result, args)


def _write(result, args):
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def assemble(tmp, phases, auto, why, args):
    """The report from the phases' JSON and images in folder tmp."""
    import numpy as np
    import torch
    from latentloom.app.sd import speed
    files = {"diffusers": "diffusers", "auto": "ours-auto", "fp32": "ours-fp32", "bf16": "ours-bf16",
             "compiled": "ours-compiled"}
    images = {name: np.load(Path(tmp) / f"{f}.npy") for name, f in files.items() if (Path(tmp) / f"{f}.npy").exists()}
    fp32_img = images.get("fp32", images["auto"] if auto == "fp32" else None)
    bf16_img = images.get("bf16", images["auto"] if auto == "bf16" else None)
    d = phases["diffusers"]

    def ratios(side):
        return {"seed_edit_ratio": side["seed_edit_s"] / d["warm_s"], "cold_ratio": side["cold_s"] / d["warm_s"],
                "rss_ratio": side["peak_rss_mib"] / d["peak_rss_mib"]}
    auto_ratios = ratios(phases["auto"])
    result = {
        "benchmark": "cpu_bf16", "model": f"{args.kind} (random weights)", "res": RES, "steps": STEPS,
        "scheduler": "DPM++ 2M Karras", "cfg": CFG, "runs": args.runs,
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "native_bf16": speed.native_bf16() or None, "python": platform.python_version()},
        "auto_dtype": auto, "auto_reason": why, "phases": phases,
        "ratios_vs_diffusers_warm_fp32": auto_ratios,
        "targets": {k: {"target": v, "value": auto_ratios[k], "met": auto_ratios[k] <= v} for k, v in TARGETS.items()},
        "fp32_pixel_identical_to_diffusers": bool(fp32_img is not None and np.array_equal(fp32_img, images["diffusers"])),
        "psnr_bf16_vs_fp32_db": psnr(bf16_img, fp32_img) if bf16_img is not None and fp32_img is not None else None,
    }
    if "bf16" in phases:
        result["bf16_ratios_vs_diffusers_warm_fp32"] = ratios(phases["bf16"])
    if "auto_compiled" in phases:
        c = phases["auto_compiled"]
        result["compile"] = {"compile_s": c["compile_s"], "seed_edit_s": c["seed_edit_s"],
                             "gain_vs_eager": phases["auto"]["seed_edit_s"] / c["seed_edit_s"],
                             "psnr_vs_eager_db": psnr(images["compiled"], images["auto"])}
    return result


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
