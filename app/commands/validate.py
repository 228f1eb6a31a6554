"""latentloom validate WORKFLOW...: every check `run` makes before running, files included."""
import sys

from latentloom.app.commands.common import EXIT_INVALID, EXIT_OK, add_set_option, check_out_dir, print_problems, session_from

NAME = "validate"


def add_parser(sub, common):
    p = sub.add_parser(NAME, parents=[common], help="check workflows (files included) without running them")
    p.add_argument("workflow", nargs="+")
    add_set_option(p)
    p.add_argument("--allow-pickle-checkpoints", action="store_true",
                   help="accept legacy pickle checkpoints, as `run --allow-pickle-checkpoints` does")
    return p


def run(args):
    problem = check_out_dir(args.out)  # as `run` checks it
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    session = session_from(args)
    if args.device in ("cuda", "mps"):  # as `run` refuses a device this machine lacks
        from latentloom.app.sd.device import pick_device
        try:
            pick_device(args.device)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INVALID
    prepared, errors = session.load_all(args.workflow, args.set)
    for e in errors:
        print_problems(e)
    for item in prepared:
        cells = ""
        if item.is_sweep:
            from latentloom.app.core.sweep import cells as all_cells
            cells = f" (a sweep of {len(all_cells(item.axes))} cells)"
        print(f"{item.source}: ok{cells}")
    return EXIT_INVALID if errors else EXIT_OK
