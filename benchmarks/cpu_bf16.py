"""The CPU speed benchmark: Latent Loom in dtype auto (and bf16, fp32, --compile) against
diffusers' warm fp32 pipeline, at SD 1.5 size with random weights, in one command:

    python -m benchmarks.cpu_bf16 [--compile] [--json benchmarks/results/cpu-sd15-256-4steps.json]

256x256, 4 steps of DPM++ 2M Karras, CFG 7.5. Each side is its own process (so each peak RSS is
its own), kept alive and loaded; the lead alternates their timed runs (diffusers, our seed edit,
our cold run, diffusers, ...), so both sides see the same machine load: on a shared machine
the ratios hold even when the absolute times do not. Reported:
- seed-edit re-run (a new seed; the prompts come from the cache) and cold run (the cache cleared,
  as diffusers' warm run has it, with the checkpoint loaded), as ratios to diffusers' warm fp32
  runs interleaved with them;
- peak RSS of each process (ru_maxrss);
- PSNR of the bf16 image against the fp32 one (same seed), and whether fp32 equals diffusers;
- with --compile: the compiled seed-edit time, its gain over eager, and the compile time;
- the load average around each phase.
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


# -- the sides (each a process serving timed runs on stdin/stdout) ----------------------------------
def side_diffusers(model):
    import numpy as np
    import torch
    import diffusers
    from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[SCHEDULER][0]).from_config(
        pipe.scheduler.config, **overrides(SCHEDULER, SIGMAS))

    def run(seed, cold=False):
        return np.array(pipe(PROMPT, negative_prompt=NEGATIVE, height=RES, width=RES, num_inference_steps=STEPS,
                             guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(seed)).images[0])
    return run, dict


def side_ours(model, dtype, compile):
    import numpy as np
    from PIL import Image
    from latentloom.app.engine import events as ev
    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.runtime import Runtime
    from latentloom.nodes import catalog
    from tests.conftest import load_workflow
    logs = []
    env = Runtime("cpu", compile=compile)
    engine = Engine(catalog, output_dir=tempfile.mkdtemp(prefix="cpu-bench-"), env=env, previews=False)
    sets = {"ckpt.path": str(model), "ckpt.dtype": dtype, "positive.text": PROMPT, "negative.text": NEGATIVE,
            "latent.width": RES, "latent.height": RES, "sampler.steps": STEPS, "sampler.cfg": CFG,
            "scheduler.name": SCHEDULER, "scheduler.sigmas": SIGMAS}
    env.load_checkpoint("bench", str(model), "", dtype)

    def run(seed, cold=False):
        if cold:
            engine.cache.clear()
        res = engine.run(load_workflow("txt2img.json", **sets, **{"noise.seed": seed}),
                         on_event=lambda e: logs.append(e.message) if isinstance(e, ev.NodeLog) else None)
        with Image.open(res.outputs[0]) as im:
            return np.array(im.convert("RGB"))

    def extra():
        from torch._dynamo.utils import counters
        return {"dtype": dtype, "compile": bool(compile), "log": list(dict.fromkeys(logs)),
                "dynamo_unique_graphs": counters["stats"]["unique_graphs"]}
    return run, extra


def serve(args):
    """A side's process: load, then answer "run SEED [cold] [save PATH]" lines with JSON lines."""
    import numpy as np
    t0 = time.perf_counter()
    if args.phase == "diffusers":
        run, extra = side_diffusers(args.model)
    else:
        run, extra = side_ours(args.model, args.dtype, args.compile)
    print(json.dumps({"load_s": time.perf_counter() - t0}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        t0 = time.perf_counter()
        image = run(int(words[1]), cold="cold" in words)
        reply = {"s": time.perf_counter() - t0}
        if "save" in words:
            np.save(words[words.index("save") + 1], image)
        if "stats" in words:
            reply.update(extra(), peak_rss_mib=rss_mib())
        print(json.dumps(reply), flush=True)


class Side:
    def __init__(self, model, phase, extra=()):
        cmd = [sys.executable, "-m", "benchmarks.cpu_bf16", "--phase", phase, "--model", str(model),
               "--res", str(RES), *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.load_s = self._reply()["load_s"]

    def _reply(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"the benchmark side exited with {self.proc.wait()}")

    def run(self, seed, *words):
        self.proc.stdin.write(" ".join(["run", str(seed), *words]) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def phase(tmp, model, name, runs, ours_args, diffusers):
    """One of our settings against diffusers, their timed runs alternating."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    print(f"phase {name} (load {load:.1f})...", file=sys.stderr, flush=True)
    ours = Side(model, "ours", ours_args)
    first = ours.run(0, "save", str(Path(tmp) / f"{name}.npy"))["s"]  # compiles with --compile
    d_times, seed_times, cold_times = [], [], []
    for i in range(runs):
        d_times.append(diffusers.run(1 + i)["s"])
        seed_times.append(ours.run(1 + i)["s"])
        cold_times.append(ours.run(100 + i, "cold")["s"])
    stats = ours.run(200, "stats")
    ours.close()
    data = {k: v for k, v in stats.items() if k != "s"}
    data.update(load_s=ours.load_s, first_run_s=first, seed_edit_s=statistics.median(seed_times),
                seed_edit_runs_s=seed_times, cold_s=statistics.median(cold_times), cold_runs_s=cold_times,
                diffusers_warm_s=statistics.median(d_times), diffusers_warm_runs_s=d_times,
                compile_s=max(0.0, first - statistics.median(cold_times)) if "--compile" in ours_args else None,
                phase_wall_s=time.perf_counter() - t0, loadavg_before=load, loadavg_after=os.getloadavg()[0])
    print(f"  {json.dumps({k: v for k, v in data.items() if not isinstance(v, list)})}", file=sys.stderr)
    return data


# -- the lead process ----------------------------------------------------------------------------------
def psnr(a, b):
    import numpy as np
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


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
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    RES = args.res
    if args.phase:
        serve(args)
        return 0

    from benchmarks.bench import build_model
    import torch
    from latentloom.app.sd import speed
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model_dir) if args.model_dir else Path(tmp) / "sd15"
        if not (model / "model_index.json").exists():
            t0 = time.perf_counter()
            build_model(args.kind, model, torch.float32)
            print(f"built a random {args.kind} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        auto_dtype, why = speed.choose_dtype("auto", "cpu")
        auto = "bf16" if auto_dtype == torch.bfloat16 else "fp32"
        diffusers = Side(model, "diffusers")
        diffusers.run(0, "save", str(Path(tmp) / "diffusers.npy"))  # its warm-up
        settings = [("auto", ["--dtype", "auto"])]
        if auto != "fp32":
            settings.append(("fp32", ["--dtype", "fp32"]))
        if auto != "bf16" and not args.no_bf16:
            settings.append(("bf16", ["--dtype", "bf16"]))
        if args.compile:
            settings.append(("auto_compiled", ["--dtype", "auto", "--compile"]))
        phases = {name: phase(tmp, model, name, args.runs, extra, diffusers) for name, extra in settings}
        d = diffusers.run(300, "stats")
        diffusers.close()
        phases["diffusers"] = {"load_s": diffusers.load_s, "peak_rss_mib": d["peak_rss_mib"]}
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
    images = {name: np.load(Path(tmp) / f"{name}.npy") for name in ("diffusers", "auto", "fp32", "bf16",
              "auto_compiled") if (Path(tmp) / f"{name}.npy").exists()}
    fp32_img = images.get("fp32", images["auto"] if auto == "fp32" else None)
    bf16_img = images.get("bf16", images["auto"] if auto == "bf16" else None)
    d = phases["diffusers"]

    def ratios(side):
        warm = side["diffusers_warm_s"]  # the diffusers runs interleaved with this side's
        return {"seed_edit_ratio": side["seed_edit_s"] / warm, "cold_ratio": side["cold_s"] / warm,
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
                             "gain_vs_eager": ratios(phases["auto"])["seed_edit_ratio"] / ratios(c)["seed_edit_ratio"],
                             "psnr_vs_eager_db": psnr(images["auto_compiled"], images["auto"])}
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
