"""latentloom sweep WORKFLOW --axis NODE.PARAM=V1,V2,... : a grid of runs and a contact sheet."""
import copy
import sys

from latentloom.app.commands.common import EXIT_INVALID, add_run_options, check_flags, print_problems, session_from

NAME = "sweep"


def add_parser(sub, common):
    p = sub.add_parser(NAME, parents=[common], help="run a workflow over a grid of param values",
                       description="Axes combine as a product: the first gives the columns, the second the "
                       "rows, the third the pages of the contact sheet. Values: V1,V2,... (JSON each, else a "
                       "string), a JSON list, 1..4 (integers, inclusive) or 0.2:1.0:0.2 (start:stop:step, "
                       "inclusive). A workflow's own sweep block is replaced by the --axis flags.")
    p.add_argument("workflow")
    p.add_argument("--axis", action="append", default=[], metavar="NODE.PARAM=VALUES",
                   help="one axis; NODE.PARAM+NODE.PARAM=[[a,b],[c,d]] zips several params")
    add_run_options(p)
    return p


def axis_block(items):
    """--axis flags -> ("sweep" block, problems)."""
    from latentloom.app.core.sweep import parse_values
    from latentloom.app.core.workflow import Problem
    from latentloom.app.session.overrides import parse_value
    axes, problems = [], []
    for item in items:
        target, eq, text = item.partition("=")
        if not eq or not target or not text.strip():
            problems.append(Problem(None, None, f"--axis {item!r}: expected NODE.PARAM=V1,V2,..."))
            continue
        try:
            values = parse_values(text, parse_value)
        except ValueError as e:
            problems.append(Problem(None, None, f"--axis {item!r}: {e}"))
            continue
        axes.append({"params": target.split("+"), "values": values})
    return {"axes": axes}, problems


def run(args):
    from latentloom.app.commands.run import execute
    from latentloom.app.core.workflow import WorkflowError
    problem = check_flags(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    session = session_from(args)
    try:
        doc = session.open(args.workflow)
        block, problems = axis_block(args.axis)
        if problems:
            raise WorkflowError(problems, "--axis")
        if block["axes"]:
            doc.data = copy.deepcopy(doc.data)
            if isinstance(doc.data, dict):
                doc.data["sweep"] = block
        elif not (isinstance(doc.data, dict) and doc.data.get("sweep")):
            raise WorkflowError([_no_axes()], args.workflow)
        prepared = session.prepare(doc, args.set)
    except WorkflowError as e:
        print_problems(e)
        return EXIT_INVALID
    return execute(session, [prepared], args)


def _no_axes():
    from latentloom.app.core.workflow import Problem
    return Problem(None, None, "no axes: give --axis NODE.PARAM=V1,V2,... or a workflow with a sweep block")
