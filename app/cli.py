"""The `latentloom` headless command: each sub-command lives in app/commands/ and works through
the session layer. This module never imports the editor (app/launcher.py picks the face)."""
import argparse
import os
import sys

from latentloom.app.commands import COMMANDS

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def version():
    try:
        from importlib.metadata import version as v
        return v("latentloom")
    except Exception:  # noqa: BLE001  (not installed: a source checkout)
        return "0+source"


def common_options():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", action="append", metavar="DIR",
                        help="models folder (repeatable; also LATENTLOOM_MODELS); default ./models")
    common.add_argument("--out", default="output", metavar="DIR", help="output folder (default ./output)")
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    return common


def build_parser():
    ap = argparse.ArgumentParser(prog="latentloom", description="Latent Loom: Stable Diffusion workflows. "
                                 "With no command (or `edit`), the editor opens.")
    ap.add_argument("--version", action="version", version=f"latentloom {version()}")
    sub = ap.add_subparsers(dest="command")
    common = common_options()
    for command in COMMANDS:
        command.add_parser(sub, common)
    edit = sub.add_parser("edit", parents=[common], help="open the editor")
    edit.add_argument("file", nargs="?")
    return ap


def names():
    return {c.NAME for c in COMMANDS} | {"edit"}


def main(argv=None):
    # transformers warns about optional image backends diffusers never uses here
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in names() | {"-h", "--help", "--version"}:
        argv = ["edit"] + argv
    args = build_parser().parse_args(argv)
    if args.command == "edit":  # the launcher (app/launcher.py) opens the editor; this module never does
        print("error: the editor is opened by the `latentloom` launcher (python -m latentloom.app edit)", file=sys.stderr)
        return EXIT_INVALID
    handler = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        return handler.run(args)
    except BrokenPipeError:  # `latentloom nodes | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # a bug: one line, the traceback only with --debug
        if getattr(args, "debug", False):
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: internal error: {type(e).__name__}: {first} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_FAILED
