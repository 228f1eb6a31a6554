"""`latentloom`: the editor when no headless command is given, else the headless CLI."""
import os
import sys

EXIT_INVALID = 2
NO_DISPLAY = ("no display found: use `latentloom run …` for headless work, "
              "or set QT_QPA_PLATFORM=offscreen")


def has_display():
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv=None):
    from latentloom.app import cli
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in cli.names() - {"edit"} or argv[0] in ("-h", "--help", "--version")):
        return cli.main(argv)
    args = cli.build_parser().parse_args(argv if argv[:1] == ["edit"] else ["edit"] + argv)
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return EXIT_INVALID
    try:
        from latentloom.app.ui.main import run_editor
    except ImportError as e:
        print(f"error: the editor needs the GUI extra (pip install -e '.[gui]'): {e}", file=sys.stderr)
        return 1
    from latentloom.app.session import models_dirs_from
    return run_editor(args.file, models=models_dirs_from(args.models), out=args.out, device=args.device)
