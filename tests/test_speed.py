"""Speed settings: the dtype auto picks and why, bf16 images equal to diffusers' bf16 pipeline."""
import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.engine import events as ev
from latentloom.app.sd import speed
from tests.conftest import load_workflow

PROMPT, NEGATIVE, SEED = "a red fox in the snow", "blurry", 7


@pytest.mark.parametrize("flags,want", [({"fpu", "amx_bf16", "avx512_bf16"}, "AMX-BF16"),
                                        ({"avx512f", "avx512_bf16"}, "AVX512-BF16"),
                                        ({"fp", "asimd", "bf16"}, "Arm BF16"), ({"avx2", "fma"}, "")])
def test_native_bf16_from_cpu_flags(monkeypatch, flags, want):
    monkeypatch.delenv("LATENTLOOM_CPU_BF16", raising=False)
    monkeypatch.setattr(speed, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert speed.native_bf16() == want


def test_auto_dtype_on_the_cpu(monkeypatch):
    monkeypatch.setenv("LATENTLOOM_CPU_BF16", "1")
    assert speed.choose_dtype("auto", "cpu") == (
        torch.bfloat16, "dtype auto -> bf16: this CPU computes bf16 natively (LATENTLOOM_CPU_BF16=1); "
        "set dtype fp32 for the fidelity mode")
    assert speed.choose_dtype("fp32", "cpu") == (torch.float32, "dtype fp32 on the CPU: the fidelity mode")
    monkeypatch.setenv("LATENTLOOM_CPU_BF16", "0")
    assert speed.choose_dtype("auto", "cpu") == (
        torch.float32, "dtype auto -> fp32: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16)")
    assert speed.choose_dtype("bf16", "cpu") == (
        torch.bfloat16, "dtype bf16: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16), so it is "
        "emulated and slow; fp32 is faster here")
    assert speed.choose_dtype("auto", "cuda")[0] == torch.float16


def _run(engine, tiny_dir, dtype, events=None, **sets):
    wf = load_workflow("txt2img.json", **{
        "ckpt.path": str(tiny_dir), "ckpt.dtype": dtype, "positive.text": PROMPT, "negative.text": NEGATIVE,
        "noise.seed": SEED, "scheduler.name": "dpmpp_2m", "scheduler.sigmas": "karras", "sampler.steps": 3,
        "latent.width": 64, "latent.height": 64, **sets})
    result = engine.run(wf, on_event=events.append if events is not None else None)
    return [np.array(Image.open(p)) for p in result.outputs]


def test_load_checkpoint_logs_the_dtype_and_why(engine, tiny_dir, monkeypatch):
    monkeypatch.setenv("LATENTLOOM_CPU_BF16", "0")
    events = []
    _run(engine, tiny_dir, "auto", events)
    logs = [e.message for e in events if isinstance(e, ev.NodeLog) and e.node_id == "ckpt"]
    assert logs == ["dtype auto -> fp32: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16)"]
    events.clear()
    _run(engine, tiny_dir, "bf16", events)
    logs = [e.message for e in events if isinstance(e, ev.NodeLog) and e.node_id == "ckpt"]
    assert logs == ["dtype bf16: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16), so it is emulated "
                    "and slow; fp32 is faster here", "channels_last U-Net and VAE, SDPA attention"]


@pytest.mark.parametrize("batch", [1, 2])
def test_bf16_images_equal_diffusers_bf16_pipeline(engine, tiny_dir, batch):
    """The speed comes from the dtype (and the memory format diffusers documents), not changed maths."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir, dtype=torch.bfloat16, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    want = pipe(PROMPT, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=3, guidance_scale=7.5,
                num_images_per_prompt=batch, generator=torch.Generator("cpu").manual_seed(SEED)).images
    got = _run(engine, tiny_dir, "bf16", **{"latent.batch_size": batch})
    assert len(got) == batch
    assert all(np.array_equal(g, np.array(w)) for g, w in zip(got, want))
    fp32 = _run(engine, tiny_dir, "fp32", **{"latent.batch_size": batch})
    assert not np.array_equal(fp32[0], got[0])  # a different dtype really ran
