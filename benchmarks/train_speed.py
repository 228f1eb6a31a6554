"""Seconds per LoRA training step on an SD 1.5-sized model with random weights (no download).

    python -m benchmarks.train_speed [--device cpu] [--resolution 128] [--steps 3] [--precision auto]
Builds the U-Net, VAE and text encoder from resources/sd15's configs, trains on the shipped
example set (workflows/inputs/zqx-creature) and prints one JSON line.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    args = ap.parse_args()
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from latentloom.app.sd.runtime import Runtime
    from latentloom.app.sd.train import data, loop
    sd15 = ROOT / "resources" / "sd15"
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(sd15 / "unet")),
        vae=AutoencoderKL.from_config(AutoencoderKL.load_config(sd15 / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(sd15 / "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(sd15 / "tokenizer"),
        scheduler=PNDMScheduler.from_pretrained(sd15 / "scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp)
        del pipe
        env = Runtime(args.device)
        dtype = {"auto": "bf16" if env.device.startswith("cuda") else "fp32"}.get(args.precision, args.precision)
        handles = env.load_checkpoint("bench", tmp, "", dtype)
        dataset = data.load(ROOT / "workflows" / "inputs" / "zqx-creature", args.resolution)
        t0 = time.perf_counter()
        trainer = loop.Trainer(env, *handles, dataset, loop.Config(
            rank=args.rank, resolution=args.resolution, precision=dtype,
            gradient_checkpointing=args.gradient_checkpointing))
        setup = time.perf_counter() - t0
        trainer.step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        if env.device.startswith("cuda"):
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - t0) / args.steps
    print(json.dumps({"device": env.device, "threads": torch.get_num_threads(), "resolution": args.resolution,
                      "rank": args.rank, "precision": trainer.config.precision, "setup_s": round(setup, 2),
                      "s_per_step": round(per_step, 3)}))


if __name__ == "__main__":
    main()
