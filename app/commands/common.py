"""What the sub-commands share: the session from the flags, problem printing, reports."""
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def session_from(args, previews=False):
    from latentloom.app.session import Session, models_dirs_from
    return Session(models_dirs=models_dirs_from(getattr(args, "models", None)),
                   output_dir=getattr(args, "out", "output"), device=getattr(args, "device", "auto"),
                   allow_pickle=getattr(args, "allow_pickle_checkpoints", False), previews=previews,
                   cache_ram=getattr(args, "cache_ram", None), cache_vram=getattr(args, "cache_vram", None),
                   compile=getattr(args, "compile", False), lowvram=getattr(args, "lowvram", False))


def print_problems(err):
    n = len(err.problems)
    print(f"{err.source or 'workflow'}: invalid workflow ({n} problem{'s' if n != 1 else ''}):", file=sys.stderr)
    for p in err.problems:
        print(f"  - {p}", file=sys.stderr)


def add_set_option(parser):
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a param (JSON value, else a string); repeatable")


def add_run_options(parser):
    add_set_option(parser)
    parser.add_argument("--report", metavar="FILE", help="write a JSON report of what ran")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--allow-pickle-checkpoints", action="store_true",
                        help="load legacy .ckpt files and diffusers folders with pickle .bin weights "
                             "(read with torch.load(weights_only=True))")
    parser.add_argument("--cache-ram", type=_gigabytes, metavar="GB",
                        help="memory for cached node outputs and loaded models; least recently used "
                             "ones are dropped beyond it (default: half the RAM)")
    parser.add_argument("--cache-vram", type=_gigabytes, metavar="GB",
                        help="the same for GPU memory (default: 80%% of the GPU's)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the U-Net and VAE decoder (channels_last, fused QKV); the first "
                        "run compiles, later runs reuse the graphs; eager where no compiler works")
    parser.add_argument("--lowvram", action="store_true",
                        help="keep models in RAM and move each to the GPU only while it is used")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="run sweep cells on N local worker processes (one per GPU, or N CPU workers)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run sweep cells on Ray actors: a cluster address (ray://host:10001, auto) or "
                        "'local' (needs the [ray] extra)")


def _gigabytes(text):
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GB") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of GB, 0 or more")
    return value


def check_flags(args):
    """What is wrong with --report or --out, found before anything runs (a message), or None."""
    return check_report_path(getattr(args, "report", None)) or check_out_dir(getattr(args, "out", None))


def check_out_dir(path):
    """An --out that cannot be a folder we write into."""
    if not path:
        return None
    try:
        p = Path(path).expanduser().absolute()
        if p.exists() and not p.is_dir():
            return f"--out {path!r} is a file, not a folder"
        existing = p
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            return f"--out {path!r}: {str(existing)!r} is a file, not a folder"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"--out {path!r}: cannot write into {str(existing)!r} (permission denied)"
    except RuntimeError:
        return f"--out {path!r}: no such user (a leading '~' means a home folder)"
    except (OSError, ValueError) as e:
        return f"--out {path!r}: {getattr(e, 'strerror', None) or e}"


def dispatch_from(args, session):
    """--workers / --ray -> a sweep dispatch (None: in this process). Raises UserError."""
    workers, ray = getattr(args, "workers", None), getattr(args, "ray", None)
    if ray:
        from latentloom.app.session.ray_dispatch import RayActors
        return RayActors(ray, workers, session.device)
    if workers is not None:
        from latentloom.app.session.workers import LocalWorkers
        return LocalWorkers(workers, session.device)
    return None


def check_report_path(path):
    """A --report target that cannot be written is an invalid flag, found before anything runs."""
    if not path:
        return None
    try:
        p = Path(path).expanduser()
        if p.is_dir():
            return f"--report {path!r} is a folder"
        if not p.parent.is_dir():
            return f"--report {path!r}: the folder {str(p.parent)!r} does not exist"
        if not os.access(p.parent, os.W_OK | os.X_OK):
            return f"--report {path!r}: cannot write into {str(p.parent)!r} (permission denied)"
    except RuntimeError:
        return f"--report {path!r}: no such user (a leading '~' means a home folder)"
    except (OSError, ValueError) as e:
        return f"--report {path!r}: {getattr(e, 'strerror', None) or e}"
    return None


def write_report(path, report):
    from latentloom.app.engine.outputs import write_file
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    try:
        write_file(Path(path).expanduser(), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError as e:
        print(f"error: --report {path!r}: {e.strerror or e}", file=sys.stderr)
        return False
    return True


def print_failure(label, e, debug):
    print(f"{label}: {e}", file=sys.stderr)
    if debug:
        import traceback
        traceback.print_exception(e.__cause__ or e)
