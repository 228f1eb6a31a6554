"""Workflow format v1: the JSON file users save and share, and its in-memory graph."""
import copy
import json
from dataclasses import dataclass, field

FORMAT = "latentloom.workflow"
VERSION = 2
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 5000
MAX_DEPTH = 64          # nesting of JSON arrays and objects anywhere in a document
MAX_INT_DIGITS = 100    # longer integer literals are refused (Python stops at 4300 digits)
NODE_KEYS = ("type", "params", "inputs", "ui")



def _v1_literal_prompts(data):
    """Version 2 added TextEncode's 'weighting' (default comfyui): version-1 prompts stay literal."""
    nodes = data.get("nodes")
    for node in nodes.values() if isinstance(nodes, dict) else ():
        if isinstance(node, dict) and node.get("type") == "TextEncode":
            params = node.setdefault("params", {})
            if isinstance(params, dict):
                params.setdefault("weighting", "none")
    return {**data, "version": 2}


# Migrations: MIGRATIONS[v] turns a version-v document into version v+1.
MIGRATIONS = {1: _v1_literal_prompts}


@dataclass
class Node:
    type: str
    params: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # input port -> (source node id, source output port)
    ui: dict = field(default_factory=dict)


@dataclass
class Workflow:
    nodes: dict = field(default_factory=dict)  # node id -> Node
    ui: dict = field(default_factory=dict)
    sweep: dict | None = None  # the optional "sweep" block, checked by app.core.sweep

    def to_json(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "nodes": {
                nid: {"type": n.type, "params": dict(n.params),
                      "inputs": {k: [s, o] for k, (s, o) in n.inputs.items()},
                      **({"ui": copy.deepcopy(n.ui)} if n.ui else {})}
                for nid, n in self.nodes.items()
            },
            **({"ui": copy.deepcopy(self.ui)} if self.ui else {}),
            **({"sweep": copy.deepcopy(self.sweep)} if self.sweep is not None else {}),
        }

    def dumps(self):
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def downstream(self, node_id):
        """Ids of the nodes that read node_id's outputs, directly or not."""
        found, todo = set(), [node_id]
        while todo:
            cur = todo.pop()
            for nid, n in self.nodes.items():
                if nid not in found and any(src == cur for src, _ in n.inputs.values()):
                    found.add(nid)
                    todo.append(nid)
        return found


@dataclass(frozen=True)
class Problem:
    node: str | None
    field: str | None  # "param 'steps'", "input 'model'" or None
    message: str

    def __str__(self):
        where = []
        if self.node is not None:
            where.append(f"node {self.node!r}")
        if self.field:
            where.append(self.field)
        return (" ".join(where) + ": " if where else "") + self.message


class WorkflowError(Exception):
    """A workflow that cannot run; carries every problem found."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(map(str, self.problems)))


class BigInt:
    """An integer literal too long to be a value (kept to be reported where it stands)."""

    def __init__(self, text):
        self.digits = len(text.lstrip("-"))

    def __repr__(self):
        return f"<an integer of {self.digits} digits>"


class KeysTwice(dict):
    """A decoded JSON object that gave some key more than once (the last value is kept)."""
    duplicates = ()


def _object(pairs):
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    obj, seen, twice = KeysTwice(obj), set(), []
    for key, _ in pairs:
        if key in seen and key not in twice:
            twice.append(key)
        seen.add(key)
    obj.duplicates = tuple(twice)
    return obj


def _int(text):
    return int(text) if len(text) <= MAX_INT_DIGITS else BigInt(text)


def loads(text):
    """json.loads that keeps duplicate keys and huge integers visible to scan()."""
    return json.loads(text, object_pairs_hook=_object, parse_int=_int)


def _bad_text(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"contains a lone surrogate character ({text!r}), which is not valid Unicode text"
    return None


def _where(path):
    """(node, field) of a location in a document."""
    if len(path) >= 2 and path[0] == "nodes":
        if len(path) >= 4 and path[2] == "params":
            return path[1], f"param {path[3]!r}"
        if len(path) >= 4 and path[2] == "inputs":
            return path[1], f"input {path[3]!r}"
        return path[1], (f"{path[2]!r}" if len(path) >= 3 else None)
    return None, (f"top-level key {path[0]!r}" if path else None)


def scan(data):
    """Problems anywhere in a decoded document that its structure checks cannot see: keys given
    twice, lone surrogates, huge integers, nesting deeper than MAX_DEPTH. Iterative, so any depth
    is safe. Returns (problems, fatal): fatal when the document must not be walked further."""
    problems, fatal = [], False
    todo = [(data, ())]
    while todo:
        value, path = todo.pop()
        if len(path) > MAX_DEPTH:
            node, where = _where(path)
            problems.append(Problem(node, where, f"nested deeper than {MAX_DEPTH} levels"))
            fatal = True
            continue
        if isinstance(value, dict):
            for key in getattr(value, "duplicates", ()):
                node, where = _where(path + (key,))
                if path == ("nodes",):
                    problems.append(Problem(key, None, "this node id is defined twice"))
                else:
                    problems.append(Problem(node, where if path[2:] else f"key {key!r}",
                                            "given twice (the file must give each key once)"))
            for key, item in value.items():
                bad = _bad_text(key) if isinstance(key, str) and path != ("nodes",) else None
                if bad:
                    node, where = _where(path + (key,))
                    problems.append(Problem(node, where, "the key " + bad))
                todo.append((item, path + (key,)))
        elif isinstance(value, list):
            todo += [(item, path + (i,)) for i, item in enumerate(value)]
        elif isinstance(value, str):
            bad = _bad_text(value)
            if bad:
                problems.append(Problem(*_where(path), bad))
        elif isinstance(value, BigInt):
            problems.append(Problem(*_where(path), f"an integer of {value.digits} digits is too large"))
    problems.sort(key=lambda p: (str(p.node), str(p.field)))
    return problems, fatal


def migrate(data):
    """Bring an older document up to VERSION (in place on a copy)."""
    data = copy.deepcopy(data)
    while data["version"] < VERSION:
        data = MIGRATIONS[data["version"]](data)
    return data


def parse(data):
    """Read a decoded JSON document into a Workflow. Returns (workflow, problems).

    Only the structure is checked here; node types, params and links are
    checked by app.core.validate against a catalog.
    """
    if not isinstance(data, dict):
        return None, [Problem(None, None, "a workflow must be a JSON object")]
    if data.get("format") != FORMAT:
        return None, [Problem(None, None, f"not a Latent Loom workflow (\"format\" must be {FORMAT!r})")]
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return None, [Problem(None, None, f"\"version\" must be a positive integer, got {version!r}")]
    if version > VERSION:
        return None, [Problem(None, None, f"made by a newer Latent Loom (format version {version}; "
                                          f"this one reads up to version {VERSION}): please upgrade")]
    problems, fatal = scan(data)
    if fatal:
        return None, problems
    data = migrate(data)
    for key in data:
        if key not in ("format", "version", "nodes", "ui", "sweep"):
            problems.append(Problem(None, None, f"unknown top-level key {key!r}"))
    ui = data.get("ui", {})
    if not isinstance(ui, dict):
        problems.append(Problem(None, None, "\"ui\" must be an object"))
        ui = {}
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict):
        return None, problems + [Problem(None, None, "\"nodes\" must be an object of node id -> node")]
    if len(raw_nodes) > MAX_NODES:
        return None, problems + [Problem(None, None, f"too many nodes ({len(raw_nodes)} > {MAX_NODES})")]
    wf = Workflow(ui=ui, sweep=data.get("sweep"))
    for nid, raw in raw_nodes.items():
        node, node_problems = _parse_node(nid, raw)
        problems += node_problems
        if node is not None:
            wf.nodes[nid] = node
    return wf, problems


def _parse_node(nid, raw):
    problems = []
    if not nid.strip() or len(nid) > 100 or not nid.isprintable():
        problems.append(Problem(nid, None, "a node id must be 1-100 printable characters (no control, "
                                           "invisible or direction-changing characters)"))
    if not isinstance(raw, dict):
        return None, problems + [Problem(nid, None, "a node must be a JSON object")]
    for key in raw:
        if key not in NODE_KEYS:
            problems.append(Problem(nid, None, f"unknown key {key!r} (a node has {', '.join(NODE_KEYS)})"))
    ntype = raw.get("type")
    if not isinstance(ntype, str) or not ntype:
        return None, problems + [Problem(nid, None, "missing \"type\"")]
    params, inputs, ui = raw.get("params", {}), raw.get("inputs", {}), raw.get("ui", {})
    if not isinstance(params, dict):
        problems.append(Problem(nid, None, "\"params\" must be an object"))
        params = {}
    if not isinstance(ui, dict):
        problems.append(Problem(nid, None, "\"ui\" must be an object"))
        ui = {}
    if not isinstance(inputs, dict):
        problems.append(Problem(nid, None, "\"inputs\" must be an object"))
        inputs = {}
    links = {}
    for port, link in inputs.items():
        if (isinstance(link, list) and len(link) == 2 and all(isinstance(x, str) for x in link)):
            links[port] = (link[0], link[1])
        else:
            problems.append(Problem(nid, f"input {port!r}",
                                    "a link must be [\"<source node id>\", \"<source output>\"]"))
    return Node(ntype, dict(params), links, ui), problems


def decode(text, source=None):
    """Decode workflow JSON text; structural checks come later."""
    if len(text) > MAX_FILE_BYTES:
        raise WorkflowError([Problem(None, None, "file is too large for a workflow")], source)
    try:
        data = loads(text)
    except RecursionError:
        raise WorkflowError([Problem(None, None, f"nested deeper than {MAX_DEPTH} levels")], source) from None
    except ValueError as e:
        raise WorkflowError([Problem(None, None, f"not valid JSON: {e}")], source) from None
    problems, fatal = scan(data)
    if fatal:
        raise WorkflowError(problems, source)
    return data
