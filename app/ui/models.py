"""The model files a file param can pick from: what the models folders hold for its folder
(Qt-free; the engine resolves the same relative names, see app.engine.files)."""
import os
from pathlib import Path

from latentloom.app.engine.files import FOLDERS

PICKER_FOLDERS = ("checkpoints", "loras", "vae", "controlnet", "embeddings")
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
MAX_DEPTH = 3


def has_picker(param):
    return param.kind == "file" and param.folder in PICKER_FOLDERS


def sub_folders(models_dirs, folder):
    """<models>/<sub> for each models folder and each sub-folder the engine searches."""
    subs = FOLDERS.get(folder, (folder,))
    return [Path(d).expanduser() / sub for d in models_dirs for sub in subs]


def list_models(models_dirs, folder, extensions=()):
    """Sorted names relative to their sub-folder: model files, and diffusers folders (a folder
    with a model_index.json) for checkpoints."""
    exts = tuple(e.lower() for e in (extensions or MODEL_EXTENSIONS))
    found = set()
    for root in sub_folders(models_dirs, folder):
        if not root.is_dir():
            continue
        for here, dirs, files in os.walk(root):
            rel = Path(here).relative_to(root)
            if folder == "checkpoints" and "model_index.json" in files and rel.parts:
                found.add(rel.as_posix())
                dirs[:] = []
                continue
            if len(rel.parts) >= MAX_DEPTH:
                dirs[:] = []
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.update((rel / f).as_posix() for f in files if f.lower().endswith(exts))
    return sorted(found, key=str.lower)
