"""Speed settings: the dtype `auto` picks, channels_last, torch.compile, LoRA fusing and offload.

fp32 on the CPU (and fp16 on a GPU without --compile) keeps diffusers' defaults exactly: the
fidelity mode. bf16 on the CPU adds channels_last; --compile adds channels_last, fused QKV
projections and torch.compile for the U-Net and the VAE decoder.
"""
import os

import torch

BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("bf16", "Arm BF16"))


def cpu_flags():
    """The CPU feature flags of /proc/cpuinfo (x86 'flags', Arm 'Features'); empty where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def native_bf16():
    """The name of the CPU feature that computes bf16 natively, or "" when there is none.

    LATENTLOOM_CPU_BF16=1/0 overrides the detection."""
    forced = os.environ.get("LATENTLOOM_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return "LATENTLOOM_CPU_BF16=1" if forced == "1" else ""
    flags = cpu_flags()
    for flag, label in BF16_FLAGS:
        if flag in flags:
            return label
    if torch.backends.cpu.get_cpu_capability() == "AMX":  # where torch reports it directly
        return "AMX"
    return ""


def choose_dtype(name, device):
    """(torch dtype, one log line saying which dtype and why)."""
    from latentloom.app.sd.device import DTYPES
    if device != "cpu":
        if name == "auto":
            return torch.float16, f"dtype auto -> fp16 on {device}"
        return DTYPES[name], f"dtype {name} on {device}"
    if name == "auto":
        feature = native_bf16()
        if feature:
            return torch.bfloat16, (f"dtype auto -> bf16: this CPU computes bf16 natively ({feature}); "
                                    "set dtype fp32 for the fidelity mode")
        return torch.float32, "dtype auto -> fp32: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16)"
    if name == "bf16" and not native_bf16():
        return torch.bfloat16, ("dtype bf16: this CPU has no native bf16 (no AMX-BF16 or AVX512-BF16), so it is "
                                "emulated and slow; fp32 is faster here")
    if name == "fp32":
        return torch.float32, "dtype fp32 on the CPU: the fidelity mode"
    return DTYPES[name], f"dtype {name} on the CPU"


def channels_last_wanted(device, dtype, compiled):
    """channels_last where it pays and fidelity is not asked for: bf16 on the CPU, and --compile."""
    return compiled or (device == "cpu" and dtype == torch.bfloat16)


def optimize(comps, device, compile_backend=None):
    """Apply the speed settings to a freshly loaded checkpoint's modules, once; returns log lines."""
    dtype = comps["unet"].dtype
    notes = []
    if channels_last_wanted(device, dtype, compile_backend is not None):
        comps["unet"].to(memory_format=torch.channels_last)
        comps["vae"].to(memory_format=torch.channels_last)
        notes.append("channels_last U-Net and VAE, SDPA attention")
    if compile_backend is not None:
        comps["unet"].fuse_qkv_projections()
        comps["unet"].compile(backend=compile_backend, mode=compile_mode(device))
        comps["vae"].decoder.compile(backend=compile_backend, mode=compile_mode(device))
        comps["fused_lora"] = ()  # app.sd.lora fuses the U-Net's LoRA stack instead of switching adapters
        notes.append(f"torch.compile ({compile_backend}) U-Net and VAE decoder, fused QKV projections")
    return notes


def compile_mode(device):
    """LATENTLOOM_COMPILE_MODE (e.g. max-autotune-no-cudagraphs), else torch's default mode."""
    return os.environ.get("LATENTLOOM_COMPILE_MODE") or None


_probed = {}


def compile_backend(requested):
    """(backend or None, note): the backend if torch.compile works with it here, else None and why.

    A tiny function is compiled once per backend and process; without a working compiler
    (no C++ toolchain, an unsupported Python, a missing backend) --compile runs eager."""
    if requested not in _probed:
        try:
            import torch._dynamo
            fn = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2 + 1, backend=requested)
            fn(torch.ones(4))
            _probed[requested] = (requested, "")
        except Exception as e:  # any failure means: no working compiler here
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            _probed[requested] = (None, f"--compile: torch.compile ({requested}) does not work here "
                                        f"({type(e).__name__}: {first}); running eager")
    return _probed[requested]
