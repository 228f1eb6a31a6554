"""On a CUDA machine: the engine's image equals the diffusers pipeline's on the same device.

    python -m benchmarks.gpu_check
Uses the tiny random model in fp32 and fp16; prints one line per case and exits 1 on a mismatch.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    import diffusers
    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.runtime import Runtime
    from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
    from latentloom.nodes import catalog
    from tests.conftest import load_workflow
    from tests.tiny import save_tiny_pipeline
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny"
        save_tiny_pipeline(model)
        engine = Engine(catalog, output_dir=Path(tmp) / "out", env=Runtime("cuda"), previews=False)
        for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            pipe = diffusers.StableDiffusionPipeline.from_pretrained(
                model, dtype=dtype, safety_checker=None, requires_safety_checker=False).to("cuda")
            pipe.set_progress_bar_config(disable=True)
            base = pipe.scheduler.config
            for name in ("euler", "euler_ancestral", "dpmpp_2m_sde", "ddim"):
                pipe.scheduler = getattr(diffusers, SCHEDULERS[name][0]).from_config(base, **overrides(name))
                ref = pipe("a fox", negative_prompt="blurry", height=64, width=64, num_inference_steps=4,
                           num_images_per_prompt=2, generator=torch.Generator("cpu").manual_seed(3)).images
                wf = load_workflow("txt2img.json", **{
                    "ckpt.path": str(model), "ckpt.dtype": dtype_name, "positive.text": "a fox",
                    "negative.text": "blurry", "latent.width": 64, "latent.height": 64, "latent.batch_size": 2,
                    "sampler.steps": 4, "noise.seed": 3, "scheduler.name": name})
                got = [np.array(Image.open(p)) for p in engine.run(wf).outputs]
                diff = max(int(np.abs(g.astype(int) - np.array(r).astype(int)).max()) for g, r in zip(got, ref))
                ok = diff == 0
                failures += not ok
                print(f"cuda {dtype_name} {name}: {'identical' if ok else f'max pixel diff {diff}'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
