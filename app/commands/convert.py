"""latentloom convert IN OUT: any workflow the app opens -> a Latent Loom workflow, or a ComfyUI
API prompt (--to comfyui-api) for graphs that map. Nothing is dropped: unsupported ComfyUI nodes
are kept and exported back as they came."""
import json
import sys
from pathlib import Path

from latentloom.app.commands.common import EXIT_INVALID, EXIT_OK, print_problems

NAME = "convert"
TARGETS = ("latentloom", "comfyui-api")


def add_parser(sub, common):
    p = sub.add_parser(NAME, parents=[common], help="convert a workflow (ComfyUI, A1111 PNG, ours) to "
                       "Latent Loom or ComfyUI API JSON")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--to", choices=TARGETS, default="latentloom", help="output format (default latentloom)")
    return p


def convert(doc, to, catalog):
    """A read Document -> (JSON value to write, notes); WorkflowError when it cannot convert."""
    from latentloom.app.core.validate import check
    from latentloom.app.core.workflow import WorkflowError
    wf, problems = check(doc.data, catalog)
    from latentloom.app.formats.placeholders import unsupported
    kept = unsupported(problems)
    problems = [p for p in problems if p not in kept]
    if wf is None or problems:
        raise WorkflowError(problems, doc.source)
    notes = [str(p) for p in kept]
    if to == "latentloom":
        return wf.to_json(), notes
    from latentloom.app.formats.comfy_export import to_prompt
    try:
        prompt, more = to_prompt(wf)
    except WorkflowError as e:
        e.source = doc.source
        raise
    return prompt, notes + more


def run(args):
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.engine.outputs import write_file
    from latentloom.app.session import Session
    from latentloom.nodes import catalog
    session = Session(catalog)
    try:
        value, notes = convert(session.open(args.input), args.to, catalog)
    except WorkflowError as e:
        print_problems(e)
        return EXIT_INVALID
    out = Path(args.output).expanduser()
    if out.suffix.lower() == ".png" or out.is_dir() or not out.parent.is_dir():
        print(f"error: {args.output!r}: give a .json file in an existing folder", file=sys.stderr)
        return EXIT_INVALID
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    write_file(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.input} -> {args.output} ({args.to})")
    return EXIT_OK
