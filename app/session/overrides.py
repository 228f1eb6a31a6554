"""NODE.PARAM=VALUE overrides (`--set`, sweep cells) on decoded documents."""
from latentloom.app.core.workflow import Problem, loads


def parse_value(text):
    """--set values: JSON when it parses, else the plain string."""
    try:
        return loads(text)
    except (ValueError, RecursionError):
        return text


def split_target(target):
    """'node.param' -> (node id, param); node ids may contain dots, params do not."""
    node_id, dot, param = target.rpartition(".")
    if not dot or not node_id or not param:
        return None
    return node_id, param


def parse_set(item):
    """'NODE.PARAM=VALUE' -> (node, param, value) or a message."""
    target, eq, value = item.partition("=")
    parts = split_target(target) if eq else None
    if parts is None:
        return f"--set {item!r}: expected NODE.PARAM=VALUE"
    return parts + (parse_value(value),)


def has_node(doc, node_id):
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    return isinstance(nodes, dict) and isinstance(nodes.get(node_id), dict)


def find_node(doc, name):
    """A node id, or the id of the one node whose title (ui.title, as imported from ComfyUI) is name."""
    if has_node(doc, name):
        return name
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    hits = [nid for nid, n in (nodes.items() if isinstance(nodes, dict) else ())
            if isinstance(n, dict) and isinstance(n.get("ui"), dict) and n["ui"].get("title") == name]
    return hits[0] if len(hits) == 1 else None


def set_param(doc, node_id, param, value):
    params = doc["nodes"][node_id].setdefault("params", {})
    if isinstance(params, dict):
        params[param] = value


def apply_sets(doc, sets, strict=True):
    """Apply overrides to a document in place. Returns (problems, indices of the sets applied).

    strict: a set naming a node this document lacks is a problem; otherwise it is skipped
    (several workflows in one command: each takes the sets that fit it)."""
    problems, applied = [], []
    for i, item in enumerate(sets):
        parsed = parse_set(item)
        if isinstance(parsed, str):
            problems.append(Problem(None, None, parsed))
            continue
        node_id, param, value = parsed
        node_id = find_node(doc, node_id) or node_id
        if not has_node(doc, node_id):
            if strict:
                problems.append(Problem(node_id, None, f"--set {item!r}: no such node"))
            continue
        set_param(doc, node_id, param, value)
        applied.append(i)
    return problems, applied
