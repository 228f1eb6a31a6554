"""latentloom run WORKFLOW...: run workflows (JSON or PNG; a workflow with a sweep block sweeps)."""
import sys

from latentloom.app.commands.common import (EXIT_FAILED, EXIT_INVALID, EXIT_OK, add_run_options, check_flags,
                                 print_failure, print_problems, session_from, write_report)

NAME = "run"


def add_parser(sub, common):
    p = sub.add_parser(NAME, parents=[common], help="run workflows (JSON or PNG) in one process")
    p.add_argument("workflow", nargs="+")
    add_run_options(p)
    return p


def run(args):
    problem = check_flags(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    session = session_from(args)
    prepared, errors = session.load_all(args.workflow, args.set)
    for e in errors:
        print_problems(e)
    if errors:
        return EXIT_INVALID
    return execute(session, prepared, args)


def execute(session, prepared, args):
    """Run prepared workflows (and sweeps) in order, sharing one session; the exit code."""
    from latentloom.app.progress import Progress
    from latentloom.app.commands.common import dispatch_from
    from latentloom.app.core.errors import UserError
    try:
        args.dispatch = dispatch_from(args, session) if any(p.is_sweep for p in prepared) else None
        if args.dispatch is None:
            session.runtime  # noqa: B018  (workers build their own)
    except (ValueError, UserError) as e:  # --device names what this machine lacks; bad --workers/--ray
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    report, code = {"runs": [], "sheets": []}, EXIT_OK
    for item in prepared:
        progress = Progress(item.source, enabled=not args.quiet)
        try:
            if item.is_sweep:
                code = _sweep(session, item, progress, report, args)
            else:
                code = _single(session, item, progress, report, args)
        finally:
            progress.close()
        if code != EXIT_OK:
            break
    report["cache"] = session.cache_stats()
    if args.report and not write_report(args.report, report):
        code = code or EXIT_FAILED
    return code


def _single(session, item, progress, report, args):
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.engine.cancel import Cancelled
    from latentloom.app.engine.executor import NodeError
    entry = {"workflow": item.source}
    code = EXIT_OK
    try:
        result = session.run(item, on_event=progress)
        entry.update(executed=result.executed, cached=result.cached, outputs=result.outputs,
                     seconds=round(result.seconds, 3))
    except WorkflowError as e:
        e.source = e.source or item.source
        print_problems(e)
        entry["error"], code = str(e), EXIT_INVALID
    except NodeError as e:
        print_failure(item.source, e, args.debug)
        entry["error"], code = str(e), EXIT_FAILED
    except (Cancelled, KeyboardInterrupt):
        print(f"{item.source}: cancelled", file=sys.stderr)
        entry["error"], code = "cancelled", EXIT_FAILED
    report["runs"].append(entry)
    return code


def _sweep(session, item, progress, report, args):
    from latentloom.app.engine.cancel import CancelToken
    cancel = CancelToken()
    try:
        result = session.sweep(item, on_event=progress, cancel=cancel, dispatch=getattr(args, "dispatch", None))
    except KeyboardInterrupt:
        print(f"{item.source}: cancelled", file=sys.stderr)
        return EXIT_FAILED
    for cell in result.cells:
        entry = {"workflow": item.source, "cell": cell.cell.values, "executed": cell.executed,
                 "cached": cell.cached, "outputs": cell.files, "seconds": round(cell.seconds, 3)}
        if cell.error:
            entry["error"] = cell.error
            print(f"{item.source}: cell {cell.cell.values}: {cell.error}", file=sys.stderr)
        report["runs"].append(entry)
    report["sheets"] += result.sheets
    report.setdefault("manifests", []).append(result.manifest)
    if not args.quiet:
        for path in result.sheets:
            print(f"{item.source}: contact sheet {path}", file=sys.stderr)
        print(f"{item.source}: manifest {result.manifest}", file=sys.stderr)
    return EXIT_OK if result.status == "ok" else EXIT_FAILED
