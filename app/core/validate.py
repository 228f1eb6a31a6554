"""Check a workflow against a node catalog, reporting every problem at once."""
from latentloom.app.core import types
from latentloom.app.core.workflow import Problem, WorkflowError, parse


def validate(wf, catalog):
    """Return the list of problems; fills omitted params with their defaults in place."""
    problems = []
    for nid, node in wf.nodes.items():
        spec = catalog.get(node.type)
        if spec is None:
            problems.append(Problem(nid, None, _unknown(node)))
            continue
        problems += _check_params(nid, node, spec)
        problems += _check_inputs(nid, node, spec, wf, catalog)
    problems += _check_cycles(wf)
    return problems


def _unknown(node):
    if node.type.startswith("comfyui:"):
        title = node.ui.get("title")
        why = node.ui.get("unsupported_because")
        return (f"unsupported ComfyUI node {node.type[8:]!r}" + (f" (title {title!r})" if title else "")
                + (f": {why}" if isinstance(why, str) and why else ": Latent Loom has no equivalent yet"))
    return f"unknown node type {node.type!r}"


def _check_params(nid, node, spec):
    problems = []
    for name in node.params:
        if spec.param(name) is None:
            problems.append(Problem(nid, f"param {name!r}", f"unknown param for {spec.type}"
                                    f" (it has: {', '.join(p.name for p in spec.params) or 'none'})"))
    ok = True
    overridden = spec.overridden(node.inputs)
    for p in spec.params:
        if p.name in overridden and p.check(node.params.get(p.name, p.default)) is not None:
            node.params.setdefault(p.name, p.default)
            continue  # a linked input replaces it
        if p.name not in node.params:
            if p.check(p.default) is not None:
                problems.append(Problem(nid, f"param {p.name!r}", "missing (this param has no usable default)"))
                ok = False
            else:
                node.params[p.name] = p.default
            continue
        err = p.check(node.params[p.name])
        if err:
            problems.append(Problem(nid, f"param {p.name!r}", err))
            ok = False
    if ok and spec.check is not None:
        for pname, message in spec.check(dict(node.params)):
            problems.append(Problem(nid, f"param {pname!r}", message))
    return problems


def _check_inputs(nid, node, spec, wf, catalog):
    problems = []
    for port, (src, out) in node.inputs.items():
        where = f"input {port!r}"
        inp = spec.input(port)
        if inp is None:
            problems.append(Problem(nid, where, f"unknown input for {spec.type}"
                                    f" (it has: {', '.join(p.name for p in spec.inputs) or 'none'})"))
            continue
        source = wf.nodes.get(src)
        if source is None:
            problems.append(Problem(nid, where, f"linked to missing node {src!r}"))
            continue
        src_spec = catalog.get(source.type)
        if src_spec is None:
            continue  # reported on that node
        output = src_spec.output(out)
        if output is None:
            problems.append(Problem(nid, where, f"node {src!r} ({source.type}) has no output {out!r}"
                                    f" (it has: {', '.join(p.name for p in src_spec.outputs) or 'none'})"))
        elif not types.compatible(output.type, inp.type):
            problems.append(Problem(nid, where, f"type mismatch: {src}.{out} is {output.type}, "
                                    f"this input takes {inp.type}"))
    for inp in spec.inputs:
        if not inp.optional and inp.name not in node.inputs:
            problems.append(Problem(nid, f"input {inp.name!r}", f"missing required input ({inp.type})"))
    return problems


def _check_cycles(wf):
    """Report each cycle once, naming its nodes in link order (iterative DFS)."""
    state, problems = {}, []
    for start in wf.nodes:
        if start in state:
            continue
        path, stack = [], [(start, iter(_sources(wf, start)))]
        state[start] = 1
        path.append(start)
        while stack:
            nid, it = stack[-1]
            src = next(it, None)
            if src is None:
                stack.pop()
                path.pop()
                state[nid] = 2
            elif state.get(src) == 1:
                cycle = path[path.index(src):]
                loop = " -> ".join(reversed(cycle + [src]))
                problems.append(Problem(src, None, f"cycle: {loop}"))
            elif src not in state:
                state[src] = 1
                path.append(src)
                stack.append((src, iter(_sources(wf, src))))
    return problems


def _sources(wf, nid):
    return [src for src, _ in wf.nodes[nid].inputs.values() if src in wf.nodes]


def check(data, catalog):
    """Parse and validate a decoded document. Returns (workflow or None, problems)."""
    wf, problems = parse(data)
    if wf is not None:
        seen = {(p.node, p.field) for p in problems}  # one problem a place: scan()'s comes first
        problems += [p for p in validate(wf, catalog) if (p.node, p.field) not in seen]
    return wf, problems


def load(data, catalog, source=None):
    """Parse and validate, raising WorkflowError with every problem."""
    wf, problems = check(data, catalog)
    if problems:
        raise WorkflowError(problems, source)
    return wf
