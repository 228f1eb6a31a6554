"""Resolve file params against the models folders, and fingerprint them for cache keys.

Only regular files and model/config folders are accepted: a device, a FIFO or a socket would
block or never end when read, and a folder that is not a diffusers model folder is refused
rather than walked. Every read is bounded and checks the cancel token.
"""
import errno
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

# Sub-folders searched for each kind of file; ComfyUI and A1111 model folders work as they are.
FOLDERS = {
    "checkpoints": ("checkpoints", "Stable-diffusion", "diffusers"),
    "loras": ("loras", "Lora"),
    "configs": ("configs",),
    "images": ("images", "input"),
    "controlnet": ("controlnet", "ControlNet"),
    "annotators": ("annotators",),
    "vae": ("vae", "VAE"),
    "embeddings": ("embeddings",),
    "training": ("training",),
}
# Folders a file param may name instead of a file: a diffusers model (or config) folder.
# File params that also take a diffusers folder, and the file that marks one.
FOLDER_OK = {"checkpoints": "model_index.json", "configs": "model_index.json", "controlnet": "config.json",
             "vae": "config.json", "annotators": "config.json", "training": None}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WINDOWS_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\)|\\")
MAX_VALUE = 4096            # characters in a file param
MAX_CONTENT_BYTES = 1 << 30  # a "content" fingerprint hashes at most this much
MAX_FOLDER_ENTRIES = 2000   # files looked at in a model folder (two levels, never deeper)
CHUNK = 1 << 20


class FileProblem(Exception):
    """A file param that names nothing usable."""


@dataclass(frozen=True)
class Resolved:
    value: str      # what the workflow said
    path: str = ""  # the absolute path found, or ""
    hub_id: str = ""


def expand(value):
    """Path(value).expanduser(), with a FileProblem for an unknown ~user."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        user = str(value).split("/", 1)[0]
        raise FileProblem(f"{value!r}: {user} is not a user on this machine "
                          "(a leading '~' means a home folder)") from None


def kind_of(mode):
    """'file', 'folder', or what else a path is (device, FIFO, socket)."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _stat(path, value):
    """os.stat of a candidate, or None when it is not there; FileProblem for other failures."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise FileProblem(f"{value!r} is a symbolic link to something that does not exist") from None
        return None
    except ValueError:
        raise FileProblem(f"{value!r}: not a usable path") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise FileProblem(f"the name is too long for this file system ({len(value)} characters)") from None
        if e.errno == errno.ELOOP:
            raise FileProblem(f"{value!r}: a loop of symbolic links") from None
        if e.errno == errno.EACCES:
            raise FileProblem(f"{value!r}: permission denied") from None
        raise FileProblem(f"{value!r}: {e.strerror or e}") from None


class Files:
    def __init__(self, models_dirs=(), base_dirs=()):
        self.models_dirs = [_expand_dir(d) for d in models_dirs]
        self.base_dirs = [_expand_dir(d) for d in base_dirs]
        self.models_dirs = [d for d in self.models_dirs if d is not None]
        self.base_dirs = [d for d in self.base_dirs if d is not None]

    def candidates(self, value, folder):
        p = expand(value)
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
        if "\x00" in value:
            raise FileProblem("contains a NUL character")
        if len(value) > MAX_VALUE:
            raise FileProblem(f"the name is too long ({len(value)} characters)")
        for c in self.candidates(value, folder):
            st = _stat(c, value)
            if st is None:
                continue
            what = kind_of(st.st_mode)
            if what == "folder":
                if folder not in FOLDER_OK:
                    raise FileProblem(f"{value!r} is a folder; this param takes a file")
                marker = FOLDER_OK[folder]
                if marker and not (c / marker).is_file():
                    raise FileProblem(f"{value!r} is a folder but not a diffusers model folder "
                                      f"(no {marker})")
            elif what != "file":
                raise FileProblem(f"{value!r} is a {what}, not a regular file")
            elif not os.access(c, os.R_OK):
                raise FileProblem(f"{value!r}: permission denied")
            return Resolved(value, str(c.resolve()))
        if hub_ok and HUB_ID.match(value) and not value.lower().endswith((".safetensors", ".ckpt", ".pt")):
            return Resolved(value, hub_id=value)
        raise FileProblem(self.missing_message(value, folder, hub_ok))

    def find(self, names, folder, walk=False):
        """The first of several candidate names that is a file, or None. walk: then also in each
        sub-folder of the folder in the models folders (sorted, at most MAX_FOLDER_ENTRIES)."""
        for name in names:
            for c in self.candidates(name, folder):
                if _is_file(c):
                    return Resolved(name, str(c.resolve()))
        subs = self._subfolders(folder) if walk else ()
        for name in names:
            for c in (sub / name for sub in subs):
                if _is_file(c):
                    return Resolved(name, str(c.resolve()))
        return None

    def _subfolders(self, folder):
        out = []
        for root in (d / sub for d in self.models_dirs for sub in FOLDERS.get(folder, ())):
            for top, dirs, _ in os.walk(root, followlinks=True):
                dirs.sort()
                if Path(top) != root:
                    out.append(Path(top))
                if len(out) >= MAX_FOLDER_ENTRIES:
                    return out
        return out

    def where(self, folder):
        dirs = [str((d / FOLDERS.get(folder, ("",))[0]).resolve()) for d in self.models_dirs]
        return " or ".join(dirs) if dirs else "a models folder (none is set: pass --models DIR)"

    def missing_message(self, value, folder, hub_ok):
        dirs = [str((d / FOLDERS.get(folder, ("",))[0]).absolute()) for d in self.models_dirs]
        msg = f"file not found: {value!r}"
        if WINDOWS_PATH.search(value):
            msg += " (a Windows path: on this system write paths with '/' and no drive letter)"
        if dirs:
            msg += f"; put it into {' or '.join(dirs)}"
        else:
            msg += "; no models folder is set (pass --models DIR or set LATENTLOOM_MODELS)"
        if hub_ok:
            msg += (", or give a full path, or name a Hugging Face repo id such as "
                    "'stable-diffusion-v1-5/stable-diffusion-v1-5' (downloaded on first use)")
        return msg


def _is_file(path):
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system
        return False


def _expand_dir(d):
    try:
        return Path(d).expanduser()
    except RuntimeError:
        return None  # an unknown ~user: nothing can be found there


def fingerprint(resolved, mode="stat", cancel=None):
    """A string that changes when the file changes: stat (path+size+mtime) or content hash.

    A folder (a diffusers model) is fingerprinted by the stat of its own files and those of its
    sub-folders, never deeper. FileProblem when the file cannot be read as a regular file."""
    if resolved.hub_id:
        return "hub:" + resolved.hub_id
    p = Path(resolved.path)
    st = _stat(p, resolved.value)
    if st is None:
        raise FileProblem(f"{resolved.value!r} has disappeared")
    what = kind_of(st.st_mode)
    if what == "folder":
        return "dir:" + str(p) + ":" + _folder_digest(p, resolved.value, cancel, content=mode == "content")
    if what != "file":
        raise FileProblem(f"{resolved.value!r} is a {what}, not a regular file")
    if mode == "content":
        return "sha256:" + _content_digest(p, resolved.value, cancel)
    return f"stat:{p}:{st.st_size}:{st.st_mtime_ns}"


_digests = {}  # (path, size, mtime, inode) -> sha256: an unchanged file is hashed once per process


def _content_digest(path, value, cancel, st=None):
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino) if st is not None else None
    if key in _digests:
        return _digests[key]
    digest = _hash_file(path, value, cancel)
    if key is not None and time.time() - st.st_mtime > 2:  # a file changed within the clock's grain
        _digests[key] = digest                               # could look unchanged
    return digest


def _hash_file(path, value, cancel):
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise FileProblem(f"{value!r}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise FileProblem(f"{value!r} is not a regular file")
        total = 0
        while chunk := f.read(CHUNK):
            total += len(chunk)
            if total > MAX_CONTENT_BYTES:
                raise FileProblem(f"{value!r} is larger than {MAX_CONTENT_BYTES >> 20} MiB")
            h.update(chunk)
            if cancel is not None:
                cancel.check()
    return h.hexdigest()


def _folder_digest(folder, value, cancel, content=False):
    """size+mtime (or, with content, the sha256) of the regular files in a folder and its direct
    sub-folders (special files skipped), at most MAX_FOLDER_ENTRIES entries."""
    parts, count = [], 0
    todo = [(folder, "")]
    for level in (0, 1):
        subs = []
        for base, rel in todo:
            try:
                entries = sorted(os.scandir(base), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                count += 1
                if count > MAX_FOLDER_ENTRIES:
                    raise FileProblem(f"{value!r}: the folder holds more than {MAX_FOLDER_ENTRIES} "
                                      "entries; a model folder holds a few dozen")
                if cancel is not None and count % 200 == 0:
                    cancel.check()
                name = f"{rel}{e.name}"
                try:
                    if e.is_dir():
                        if level == 0:
                            subs.append((e.path, name + "/"))
                        continue
                    st = e.stat()  # follows a symlinked file
                except OSError:
                    parts.append(f"{name}:missing")
                    continue
                if stat.S_ISREG(st.st_mode):
                    what = (_content_digest(e.path, value, cancel, st) if content
                            else f"{st.st_size}:{st.st_mtime_ns}")
                    parts.append(f"{name}:{what}")
        todo = subs
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")
PICKLE_MESSAGE = ("{what} is a pickle file; these can run code when loaded. Convert it to .safetensors, "
                  "or opt in with --allow-pickle-checkpoints (then it is read with "
                  "torch.load(weights_only=True) only)")


def pickle_weights(path):
    """The pickle files loading a checkpoint would read: the file itself, or for a diffusers folder
    the weights of sub-folders that have pickle weights and no .safetensors."""
    path = Path(path)
    if not path.is_dir():
        return [path.name] if path.suffix.lower() in PICKLE_SUFFIXES else []
    found = []
    try:
        subs = sorted(p for p in path.iterdir() if p.is_dir())
        for sub in subs[:64]:
            names = sorted(f.name for f in sub.iterdir() if f.is_file())[:MAX_FOLDER_ENTRIES]
            if not any(n.endswith(".safetensors") for n in names):
                found += [f"{sub.name}/{n}" for n in names if n.lower().endswith(PICKLE_SUFFIXES)]
    except OSError:
        pass
    return found


WEIGHT_SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES


def weights_bytes(path):
    """Bytes of a checkpoint's weights on disk: the file, or a model folder's weight files."""
    path = Path(path)
    try:
        if not path.is_dir():
            return path.stat().st_size
        return sum(f.stat().st_size for sub in list(path.iterdir())[:64] if sub.is_dir()
                   for f in list(sub.iterdir())[:MAX_FOLDER_ENTRIES]
                   if f.name.lower().endswith(WEIGHT_SUFFIXES) and f.is_file())
    except OSError:
        return 0
