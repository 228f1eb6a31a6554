"""Memory estimates, to refuse what cannot fit before allocating it.

The largest step of a Stable Diffusion 1.x run is the VAE decode at full resolution: its widest
block (128 channels in SD 1.x) holds about four tensors of that width at once, per output pixel.
"""
import os

from latentloom.app.core.workflow import Problem

SD_VAE_CHANNELS = 128
LIVE_TENSORS = 4


def total_ram():
    """Physical memory in bytes (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def show(n):
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def decode_bytes(pixels, channels=SD_VAE_CHANNELS, element_size=4):
    """Peak bytes to decode `pixels` output pixels (width x height x batch)."""
    return pixels * channels * element_size * LIVE_TENSORS


def workflow_problems(wf, limit=None, model_bytes=0):
    """Nodes whose sizes need more memory than the machine has, with the models' weights
    (checked before running)."""
    limit = limit if limit is not None else total_ram()
    problems = []
    if not limit:
        return problems
    for nid, node in wf.nodes.items():
        if node.type != "EmptyLatent":
            continue
        p = node.params
        w, h, b = p.get("width", 512), p.get("height", 512), p.get("batch_size", 1)
        if not all(isinstance(v, int) for v in (w, h, b)):
            continue
        need = decode_bytes(w * h * b)
        if need + model_bytes > limit:
            field = "param 'batch_size'" if b > 1 else "param 'width'"
            models = f" (and {show(model_bytes)} for the model)" if model_bytes else ""
            problems.append(Problem(nid, field, f"{w}x{h}, batch {b} needs about {show(need)} of memory to "
                                                f"decode{models}, more than this machine's {show(limit)}: "
                                                "make it smaller"))
    return problems


def device_memory(device):
    """Bytes of memory of a torch device: the GPU's, or the RAM for the CPU."""
    if str(device).startswith("cuda"):
        import torch
        return torch.cuda.get_device_properties(device).total_memory
    return total_ram()


def check_decode(vae, shape, what="decode"):
    """UserError when decoding (or encoding) an image of shape [batch, C, H, W] pixels cannot fit."""
    from latentloom.app.core.errors import UserError
    b, _, h, w = shape
    need = decode_bytes(b * h * w, vae.config.block_out_channels[0], vae.dtype.itemsize)
    have = device_memory(vae.device)
    if have and need > have:
        raise UserError(f"{w}x{h}, batch {b} needs about {show(need)} of memory to {what}, more than the "
                        f"{show(have)} of {'the GPU' if vae.device.type == 'cuda' else 'this machine'}: "
                        "make it smaller")
