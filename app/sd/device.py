"""Choose the torch device and dtype."""
import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_device(name="auto"):
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: no MPS device is available")
    return name


def pick_dtype(name, device):
    """The torch dtype for a dtype setting (app.sd.speed.choose_dtype also says why)."""
    from latentloom.app.sd.speed import choose_dtype
    return choose_dtype(name, device)[0]
