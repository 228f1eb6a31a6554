"""Resolve file params against the models folders, and fingerprint them for cache keys."""
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Sub-folders searched for each kind of file; ComfyUI and A1111 model folders work as they are.
FOLDERS = {
    "checkpoints": ("checkpoints", "Stable-diffusion", "diffusers"),
    "loras": ("loras", "Lora"),
    "configs": ("configs",),
    "images": ("images", "input"),
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class FileProblem(Exception):
    """A file param that names nothing usable."""


@dataclass(frozen=True)
class Resolved:
    value: str      # what the workflow said
    path: str = ""  # the absolute path found, or ""
    hub_id: str = ""


class Files:
    def __init__(self, models_dirs=(), base_dirs=()):
        self.models_dirs = [Path(d).expanduser() for d in models_dirs]
        self.base_dirs = [Path(d).expanduser() for d in base_dirs]

    def candidates(self, value, folder):
        p = Path(value).expanduser()
        if p.is_absolute():
            return [p]
        out = []
        for d in self.models_dirs:
            out += [d / sub / p for sub in FOLDERS.get(folder, ())] + [d / p]
            if folder == "images":  # ComfyUI keeps its inputs beside its models folder
                out.append(d.parent / "input" / p)
        out += [d / p for d in self.base_dirs] + [Path.cwd() / p]
        return out

    def resolve(self, value, folder, hub_ok=False):
        for c in self.candidates(value, folder):
            if c.exists():
                return Resolved(value, str(c.resolve()))
        if hub_ok and HUB_ID.match(value) and not value.lower().endswith((".safetensors", ".ckpt", ".pt")):
            return Resolved(value, hub_id=value)
        raise FileProblem(self.missing_message(value, folder, hub_ok))

    def missing_message(self, value, folder, hub_ok):
        dirs = [str((d / FOLDERS.get(folder, ("",))[0]).resolve()) for d in self.models_dirs]
        msg = f"file not found: {value!r}"
        if dirs:
            msg += f"; put it into {' or '.join(dirs)}"
        else:
            msg += "; no models folder is set (pass --models DIR or set LATENTLOOM_MODELS)"
        if hub_ok:
            msg += (", or give a full path, or name a Hugging Face repo id such as "
                    "'stable-diffusion-v1-5/stable-diffusion-v1-5' (downloaded on first use)")
        return msg


def fingerprint(resolved, mode="stat"):
    """A string that changes when the file changes: stat (path+size+mtime) or content hash."""
    if resolved.hub_id:
        return "hub:" + resolved.hub_id
    p = Path(resolved.path)
    if p.is_dir():
        parts = []
        for root, dirs, names in os.walk(p):
            dirs.sort()
            for n in sorted(names):
                st = os.stat(os.path.join(root, n))
                parts.append(f"{os.path.relpath(os.path.join(root, n), p)}:{st.st_size}:{st.st_mtime_ns}")
        return "dir:" + str(p) + ":" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    if mode == "content":
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()
    st = p.stat()
    return f"stat:{p}:{st.st_size}:{st.st_mtime_ns}"
