"""Writing output files: confined to the output folder, never overwriting, never half-written.

A file is written under a temporary name in its final folder, flushed to disk, then linked to
its numbered name in one step (os.link fails if the name exists), so a crash at any moment
leaves either the whole file or nothing under a real output name.
"""
import os
import re
from pathlib import Path

from latentloom.app.core.errors import UserError
from latentloom.app.core.outputs import check_prefix

SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")
TMP_SUFFIX = ".latentloom-partial"  # a file being written: hidden, and never a real output name


def safe_stem(text, default="output"):
    """A file name stem usable as a prefix: other characters become '_'."""
    stem = SAFE_STEM.sub("_", text).strip("._-")[:80]
    return stem or default


def target_dir(output_dir, prefix):
    """The folder a prefix writes into, created inside the output folder.

    Every existing part is resolved (symlinks included) and checked to stay inside the
    output folder before anything below it is created."""
    problem = check_prefix(prefix)
    if problem:
        raise UserError(f"filename_prefix {prefix!r}: {problem}")
    try:
        out = Path(output_dir).expanduser()
    except RuntimeError:
        raise UserError(f"the output folder {str(output_dir)!r} starts with an unknown ~user") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"the output folder {str(out)!r} is a file, not a folder") from None
    except OSError as e:
        raise UserError(f"cannot create the output folder {str(out)!r}: {e.strerror or e}") from None
    if not out.is_dir():
        raise UserError(f"the output folder {str(out)!r} is not a folder")
    root = out.resolve()
    cur = root
    for part in Path(prefix).parts[:-1]:
        cur = cur / part
        if cur.is_symlink() or cur.exists():
            real = cur.resolve()
            if real != root and root not in real.parents:
                raise UserError(f"filename_prefix {prefix!r} leads outside the output folder")
            if not real.is_dir():
                raise UserError(f"filename_prefix {prefix!r}: {part!r} is a file, not a folder")
            cur = real
        else:
            try:
                cur.mkdir()
            except OSError as e:
                raise UserError(f"filename_prefix {prefix!r}: cannot create {part!r}: {e.strerror or e}") from None
    return cur


def write_new(output_dir, prefix, suffix, write):
    """Write a new file <prefix>_<5-digit counter><suffix>; write(tmp_path) fills it. Returns the path."""
    folder = target_dir(output_dir, prefix)
    stem = Path(prefix).name
    tmp = folder / f".{stem}.{os.getpid()}.{id(write):x}{TMP_SUFFIX}"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        pattern = re.compile(re.escape(stem) + r"_(\d{5,})" + re.escape(suffix) + "$")
        used = [int(m.group(1)) for n in os.listdir(folder) if (m := pattern.match(n))]
        counter = max(used, default=0) + 1
        while True:
            path = folder / f"{stem}_{counter:05d}{suffix}"
            try:
                os.link(tmp, path)
                break
            except FileExistsError:
                counter += 1
    except OSError as e:
        raise UserError(f"cannot write into {str(folder)!r}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    _remove_stale(folder)
    return path


STALE = re.compile(r"^\..*\.(\d+)\.[0-9a-f]+" + re.escape(TMP_SUFFIX) + "$")


def _remove_stale(folder):
    """Remove temporary files that processes killed mid-write left behind (their pid is gone)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(TMP_SUFFIX)]
    except OSError:
        return
    for name in names:
        m = STALE.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            (Path(folder) / name).unlink(missing_ok=True)
        except (PermissionError, OverflowError, OSError):
            pass


def write_file(path, write):
    """Replace one file atomically (settings, reports): temp file, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
