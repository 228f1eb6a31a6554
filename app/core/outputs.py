"""Output file names: confined to the output folder, never overwriting."""
import os
import re
from pathlib import Path

from app.core.errors import UserError

PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


def check_prefix(prefix):
    """Error message for a filename prefix that could leave the output folder, or None."""
    if not prefix:
        return "must not be empty"
    if "\\" in prefix or prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix):
        return "must be a relative name inside the output folder (no absolute paths or backslashes)"
    parts = prefix.split("/")
    if len(parts) > 4:
        return "at most 3 sub-folders"
    for part in parts:
        if part in ("", ".", ".."):
            return "must not contain '..', '.' or empty path parts"
        if not PART.match(part) or part.endswith((".", " ")):
            return (f"{part!r}: use letters, digits, space, '.', '_' and '-' (starting with a letter "
                    "or digit), at most 100 characters a part")
    return None


def reserve(output_dir, prefix, suffix=".png"):
    """Create and return a new empty file <prefix>_<5-digit counter><suffix> inside output_dir.

    The file is created exclusively, so two runs never overwrite each other or an old file.
    """
    problem = check_prefix(prefix)
    if problem:
        raise UserError(f"filename_prefix {prefix!r}: {problem}")
    root = Path(output_dir).resolve()
    target_dir = (root / prefix).parent
    target_dir.mkdir(parents=True, exist_ok=True)
    target_dir = target_dir.resolve()
    if root != target_dir and root not in target_dir.parents:  # a symlinked sub-folder
        raise UserError(f"filename_prefix {prefix!r} leads outside the output folder")
    stem = Path(prefix).name
    pattern = re.compile(re.escape(stem) + r"_(\d{5,})" + re.escape(suffix) + "$")
    used = [int(m.group(1)) for n in os.listdir(target_dir) if (m := pattern.match(n))]
    counter = max(used, default=0) + 1
    while True:
        path = target_dir / f"{stem}_{counter:05d}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            counter += 1
            continue
        os.close(fd)
        return path
