"""A training set: a folder of images with same-named .txt captions or one metadata.jsonl."""
import json
from dataclasses import dataclass, field
from pathlib import Path

from latentloom.app.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class Dataset:
    folder: str
    names: list                                   # file names, sorted
    captions: list                                # one caption per image
    pixels: object                                # tensor [N, 3, res, res] in -1..1
    skipped: list = field(default_factory=list)   # "name (reason)" for unreadable images
    defaulted: int = 0                            # images that took the default caption

    def summary(self):
        """Caption counts for the file's metadata: {caption: images}, most frequent first."""
        counts = {}
        for c in self.captions:
            counts[c] = counts.get(c, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def load(folder, resolution, default_caption="", where="data"):
    """Read, centre-crop and resize every image; unreadable ones are listed in .skipped.

    `where` names the flag or param in errors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{where}: {str(folder)!r} is not a folder")
    meta = _metadata(folder, where)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{where}: the folder {str(folder)!r} has no images "
                        f"({', '.join(IMAGE_SUFFIXES)})")
    names, captions, images, skipped, defaulted = [], [], [], [], 0
    for path in files:
        try:
            images.append(_read(path, resolution))
        except Exception as e:  # noqa: BLE001  (any decoder failure: list it and go on)
            skipped.append(f"{path.name} ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})")
            continue
        caption = meta.get(path.name)
        if caption is None:
            txt = path.with_suffix(".txt")
            caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        if caption is None:
            caption, defaulted = default_caption, defaulted + 1
        names.append(path.name)
        captions.append(caption)
    if not images:
        raise UserError(f"{where}: none of the {len(files)} images in {str(folder)!r} could be read: "
                        + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    return Dataset(str(folder), names, captions, _to_tensor(images), skipped, defaulted)


def _metadata(folder, where):
    """{file_name: text} from metadata.jsonl, as diffusers' imagefolder datasets write it."""
    path = folder / "metadata.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[Path(row["file_name"]).name] = str(row["text"])
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{where}: metadata.jsonl line {n} is not a JSON object with "
                            "\"file_name\" and \"text\"") from None
    return out


def _read(path, resolution):
    """Centre-crop to a square and resize (Pillow's ImageOps.fit), EXIF rotation applied."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        return ImageOps.fit(im, (resolution, resolution), method=Image.Resampling.BICUBIC)


def _to_tensor(images):
    import numpy as np
    import torch
    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
