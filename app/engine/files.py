"""Resolve file params against the models folders, and fingerprint them for cache keys."""
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

# Sub-folders searched for each kind of file; ComfyUI and A1111 model folders work as they are.
FOLDERS = {
    "checkpoints": ("checkpoints", "Stable-diffusion", "diffusers"),
    "loras": ("loras", "Lora"),
    "configs": ("configs",),
    "images": ("images", "input"),
    "training": ("training",),
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
                path = os.path.join(root, n)
                st = os.stat(path)
                what = _sha256(path, st) if mode == "content" else f"{st.st_size}:{st.st_mtime_ns}"
                parts.append(f"{os.path.relpath(path, p)}:{what}")
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        return ("dir-sha256:" if mode == "content" else "dir:" + str(p) + ":") + digest
    if mode == "content":
        return "sha256:" + _sha256(p, p.stat())
    st = p.stat()
    return f"stat:{p}:{st.st_size}:{st.st_mtime_ns}"


_digests = {}  # (path, size, mtime, inode) -> sha256: an unchanged file is hashed once per process


def _sha256(path, st):
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _digests:
        return _digests[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if time.time() - st.st_mtime > 2:  # a file changed within the clock's grain could look unchanged
        _digests[key] = h.hexdigest()
    return h.hexdigest()
