"""The `latentloom` command line: run, validate and list nodes; `edit` opens the editor."""
import argparse
import json
import os
import sys
from pathlib import Path

from app.core.workflow import Problem, WorkflowError, decode

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def parse_value(text):
    """--set values: JSON when it parses, else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_document(path):
    """The decoded workflow document from a .json file or a PNG that carries one."""
    p = Path(path)
    if not p.is_file():
        raise WorkflowError([Problem(None, None, "no such file")], str(path))
    with open(p, "rb") as f:
        head = f.read(8)
    if head == b"\x89PNG\r\n\x1a\n":
        from app.core.png import read_workflow
        return read_workflow(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkflowError([Problem(None, None, "not a UTF-8 JSON file or a PNG")], str(path)) from None
    return decode(text, str(path))


def apply_sets(doc, sets):
    """Apply NODE.PARAM=VALUE overrides to a decoded document; returns problems."""
    problems = []
    for item in sets:
        target, eq, value = item.partition("=")
        node_id, dot, param = target.rpartition(".")
        if not eq or not dot or not node_id or not param:
            problems.append(Problem(None, None, f"--set {item!r}: expected NODE.PARAM=VALUE"))
            continue
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        if not isinstance(nodes, dict) or not isinstance(nodes.get(node_id), dict):
            problems.append(Problem(node_id, None, f"--set {item!r}: no such node"))
            continue
        params = nodes[node_id].setdefault("params", {})
        if isinstance(params, dict):
            params[param] = parse_value(value)
    return problems


def load(path, sets, catalog):
    from app.core.validate import check
    doc = read_document(path)
    problems = apply_sets(doc, sets)
    wf, more = check(doc, catalog)
    problems += more
    if problems:
        raise WorkflowError(problems, str(path))
    return wf


def print_problems(err):
    print(f"{err.source or 'workflow'}: invalid workflow ({len(err.problems)} "
          f"problem{'s' if len(err.problems) != 1 else ''}):", file=sys.stderr)
    for p in err.problems:
        print(f"  - {p}", file=sys.stderr)


def models_dirs(args):
    dirs = list(args.models or [])
    env = os.environ.get("LATENTLOOM_MODELS")
    if env:
        dirs += [d for d in env.split(os.pathsep) if d]
    return dirs or ["models"]


def cmd_run(args, catalog):
    workflows = []
    invalid = False
    for path in args.workflow:
        try:
            workflows.append((path, load(path, args.set or [], catalog)))
        except WorkflowError as e:
            print_problems(e)
            invalid = True
    if invalid:
        return EXIT_INVALID
    from app.engine.cancel import Cancelled
    from app.engine.executor import Engine, NodeError
    from app.sd.runtime import Runtime
    from app.progress import Progress
    try:
        runtime = Runtime(args.device, allow_pickle=args.allow_pickle_checkpoints)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    engine = Engine(catalog, output_dir=args.out, models_dirs=models_dirs(args), env=runtime,
                    previews=False)
    report, code = {"runs": []}, EXIT_OK
    for path, wf in workflows:
        progress = Progress(path, enabled=not args.quiet)
        entry = {"workflow": str(path)}
        try:
            result = engine.run(wf, on_event=progress, base_dirs=[Path(path).resolve().parent])
            entry.update(executed=result.executed, cached=result.cached, outputs=result.outputs,
                         seconds=round(result.seconds, 3))
        except WorkflowError as e:
            e.source = e.source or str(path)
            print_problems(e)
            entry["error"] = str(e)
            code = EXIT_INVALID
        except NodeError as e:
            print(f"{path}: {e}", file=sys.stderr)
            if args.debug:
                import traceback
                traceback.print_exception(e.__cause__ or e)
            entry["error"] = str(e)
            code = EXIT_FAILED
        except (Cancelled, KeyboardInterrupt):
            print(f"{path}: cancelled", file=sys.stderr)
            entry["error"] = "cancelled"
            code = EXIT_FAILED
        finally:
            progress.close()
        report["runs"].append(entry)
        if code != EXIT_OK:
            break
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return code


def cmd_validate(args, catalog):
    code = EXIT_OK
    for path in args.workflow:
        try:
            load(path, args.set or [], catalog)
            print(f"{path}: ok")
        except WorkflowError as e:
            print_problems(e)
            code = EXIT_INVALID
    return code


def cmd_nodes(args, catalog):
    if args.json:
        print(json.dumps(catalog.describe(), indent=2))
        return EXIT_OK
    for spec in catalog:
        ins = ", ".join(f"{p.name}:{p.type}" for p in spec.inputs) or "-"
        outs = ", ".join(f"{p.name}:{p.type}" for p in spec.outputs) or "-"
        print(f"{spec.type}  [{spec.category}]  ({ins}) -> ({outs})")
        for p in spec.params:
            extra = []
            lo, hi = p.bounds()
            if lo is not None or hi is not None:
                extra.append(f"{lo}..{hi}")
            if p.choices:
                extra.append("|".join(map(str, p.choices)))
            print(f"    {p.name} ({p.kind}) = {json.dumps(p.default)}"
                  f"{'  [' + '; '.join(extra) + ']' if extra else ''}  {p.help}")
    return EXIT_OK


def cmd_edit(args, catalog):
    try:
        from app.ui.main import run_editor
    except ImportError as e:
        print(f"error: the editor needs the GUI extra (pip install -e '.[gui]'): {e}", file=sys.stderr)
        return EXIT_FAILED
    return run_editor(args.file, models=models_dirs(args), out=args.out, device=args.device)


def build_parser():
    ap = argparse.ArgumentParser(prog="latentloom", description="Latent Loom: Stable Diffusion workflows.")
    sub = ap.add_subparsers(dest="command")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", action="append", metavar="DIR",
                        help="models folder (repeatable; also LATENTLOOM_MODELS); default ./models")
    common.add_argument("--out", default="output", metavar="DIR", help="output folder (default ./output)")
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    run = sub.add_parser("run", parents=[common], help="run workflows (JSON or PNG) in one process")
    run.add_argument("workflow", nargs="+")
    run.add_argument("--set", action="append", metavar="NODE.PARAM=VALUE", help="override a param")
    run.add_argument("--report", metavar="FILE", help="write a JSON report of what ran")
    run.add_argument("--debug", action="store_true", help="show tracebacks")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--allow-pickle-checkpoints", action="store_true",
                     help="load legacy .ckpt files (with torch.load(weights_only=True))")
    val = sub.add_parser("validate", help="check workflows without running them")
    val.add_argument("workflow", nargs="+")
    val.add_argument("--set", action="append", metavar="NODE.PARAM=VALUE")
    nodes = sub.add_parser("nodes", help="list the node catalog")
    nodes.add_argument("--json", action="store_true")
    edit = sub.add_parser("edit", parents=[common], help="open the editor")
    edit.add_argument("file", nargs="?")
    return ap


def main(argv=None):
    # transformers warns about optional image backends diffusers never uses here
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from nodes import catalog
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["edit"] + list(argv if argv is not None else sys.argv[1:]))
    handler = {"run": cmd_run, "validate": cmd_validate, "nodes": cmd_nodes, "edit": cmd_edit}[args.command]
    try:
        return handler(args, catalog)
    except BrokenPipeError:  # `latentloom nodes | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
