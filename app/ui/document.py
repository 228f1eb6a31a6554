"""The open workflow and the one command layer that edits it.

The document is the engine's Qt-free ``Workflow``. Every edit goes through a
method here (add_node, remove_nodes, connect, disconnect, set_param, move,
paste...), which pushes a ``QUndoCommand`` made of primitive operations. Each
primitive changes the Workflow and emits a signal; the graph view and the
properties panel follow those signals. Nothing else changes the Workflow.
"""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import copy
import re
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from latentloom.app.core import types
from latentloom.app.core.validate import check
from latentloom.app.core.workflow import Node, Problem, Workflow, WorkflowError
from latentloom.app.engine.outputs import write_file
from latentloom.app.formats import placeholders

CLIPBOARD_FORMAT = "latentloom.clipboard"
_MISSING = object()
_MERGE_ID = 4242


class LinkRefused(ValueError):
    """A connection the document will not make; the message says why."""


WORDS = {"LoRA": "Lora", "ControlNet": "Controlnet"}  # mixed-case words that are one word


def snake(name):
    """A node id from a type's words: LoadLoRA -> load_lora, VAEDecode -> vae_decode."""
    for word, plain in WORDS.items():
        name = name.replace(word, plain)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class _Edit(QUndoCommand):
    """A list of primitive operations and the list that reverts them."""

    def __init__(self, text, redo_ops, undo_ops, merge_key=None):
        super().__init__(text)
        self.redo_ops, self.undo_ops, self.merge_key = list(redo_ops), list(undo_ops), merge_key

    def redo(self):
        for fn, *args in self.redo_ops:
            fn(*args)

    def undo(self):
        for fn, *args in self.undo_ops:
            fn(*args)

    def id(self):
        return _MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other):
        if other.merge_key is None or other.merge_key != self.merge_key:
            return False
        self.redo_ops = other.redo_ops
        return True


class Document(QObject):
    node_added = Signal(str)
    node_removed = Signal(str)
    input_changed = Signal(str, str)   # node id, input port
    param_changed = Signal(str, str)   # node id, param name
    node_moved = Signal(str)
    node_ui_changed = Signal(str, str)  # node id, key of its ui data
    sweep_changed = Signal()
    groups_changed = Signal()
    reset = Signal()                   # the whole workflow was replaced
    changed = Signal()                 # after any edit
    path_changed = Signal()

    def __init__(self, catalog, parent=None):
        super().__init__(parent)
        self.catalog = catalog
        self.workflow = Workflow()
        self.undo_stack = QUndoStack(self)
        self.path = None          # the .json file it is saved in, or None
        self.origin = None        # where it was read from (a .json or a PNG)
        self.new_params = {}      # param defaults for new nodes, by param name (e.g. dtype)
        self.placeholders = {}    # node id -> spec drawn for a kept unsupported ComfyUI node

    # --- whole documents -------------------------------------------------

    def load(self, data, path=None, origin=None):
        """Replace the workflow with a decoded document. Returns the non-fatal problems.

        Raises WorkflowError when the document cannot be shown at all (not a
        workflow, or node types this build does not know: dropping them would
        lose work).
        """
        wf, problems = check(copy.deepcopy(data), self.catalog)
        if wf is None:
            raise WorkflowError(problems, origin)
        unknown = [p for p in problems if p.message.startswith("unknown node type")]
        if unknown:
            raise WorkflowError(unknown, origin)
        self.workflow = wf
        self.placeholders = {}
        self.path, self.origin = path, origin or path
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.reset.emit()
        self.path_changed.emit()
        self.changed.emit()
        return problems

    def new(self):
        self.load({"format": "latentloom.workflow", "version": 1, "nodes": {}})

    def to_json(self):
        """The document as JSON data (Workflow.to_json returns fresh copies)."""
        return self.workflow.to_json()

    def save(self, path):
        path = Path(path)
        text = self.workflow.dumps()
        write_file(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        self.path = self.origin = str(path)
        self.undo_stack.setClean()
        self.path_changed.emit()

    @property
    def dirty(self):
        return not self.undo_stack.isClean()

    def problems(self):
        """Validation problems of the current workflow (on a copy)."""
        return check(self.to_json(), self.catalog)[1]

    # --- queries -----------------------------------------------------------

    def node(self, nid):
        return self.workflow.nodes[nid]

    def spec(self, nid):
        """The node's catalog spec; for a kept unsupported ComfyUI node, its placeholder's spec."""
        node = self.workflow.nodes[nid]
        found = self.catalog.get(node.type)
        if found is None and placeholders.is_placeholder(node.type):
            found = self.placeholders.get(nid)
            if found is None or found.type != node.type:
                found = self.placeholders[nid] = placeholders.spec(self.workflow, nid, self.catalog)
        return found

    def pos(self, nid):
        pos = self.workflow.nodes[nid].ui.get("pos")
        if isinstance(pos, (list, tuple)) and len(pos) == 2 and all(isinstance(v, (int, float)) for v in pos):
            return float(pos[0]), float(pos[1])
        return None

    def fresh_id(self, type, taken=()):
        base = snake(type.rsplit(":", 1)[-1]) or "node"
        nid, n = base, 1
        while nid in self.workflow.nodes or nid in taken:
            n += 1
            nid = f"{base}_{n}"
        return nid

    def check_link(self, src, out, dst, inp):
        """Why linking src.out -> dst.inp is refused, or None when it is fine."""
        nodes = self.workflow.nodes
        if src not in nodes or dst not in nodes:
            return "no such node"
        s_spec, d_spec = self.spec(src), self.spec(dst)
        o, i = s_spec.output(out), d_spec.input(inp)
        if o is None or i is None:
            return f"{src}.{out} -> {dst}.{inp}: no such port"
        if not (types.compatible(o.type, i.type) or placeholders.ANY in (o.type, i.type)):
            return (f"Cannot connect {src}.{out} ({o.type}) to {dst}.{inp} ({i.type}): "
                    f"the types do not match")
        if src == dst or src in self.workflow.downstream(dst):
            return f"Cannot connect {src}.{out} to {dst}.{inp}: it would make a cycle"
        return None

    # --- primitives (no undo; each emits its signal) ------------------------

    def _insert(self, nid, node):
        self.workflow.nodes[nid] = copy.deepcopy(node)
        self.node_added.emit(nid)

    def _delete(self, nid):
        del self.workflow.nodes[nid]
        self.node_removed.emit(nid)

    def _set_input(self, nid, port, link):
        inputs = self.workflow.nodes[nid].inputs
        if link is None:
            inputs.pop(port, None)
        else:
            inputs[port] = tuple(link)
        self.input_changed.emit(nid, port)

    def _set_param(self, nid, name, value):
        params = self.workflow.nodes[nid].params
        if value is _MISSING:
            params.pop(name, None)
        else:
            params[name] = value
        self.param_changed.emit(nid, name)

    def _set_pos(self, nid, pos):
        ui = self.workflow.nodes[nid].ui
        if pos is None:
            ui.pop("pos", None)
        else:
            ui["pos"] = [round(float(pos[0]), 1), round(float(pos[1]), 1)]
        self.node_moved.emit(nid)

    def _set_node_ui(self, nid, key, value):
        ui = self.workflow.nodes[nid].ui
        if value is None:
            ui.pop(key, None)
        else:
            ui[key] = copy.deepcopy(value)
        self.node_ui_changed.emit(nid, key)

    def _set_sweep(self, block):
        self.workflow.sweep = copy.deepcopy(block)
        self.sweep_changed.emit()

    def _set_groups(self, groups):
        if groups:
            self.workflow.ui["groups"] = copy.deepcopy(groups)
        else:
            self.workflow.ui.pop("groups", None)
        self.groups_changed.emit()

    def place(self, nid, pos):
        """Give a node without a position one, outside the undo history (automatic layout)."""
        self.workflow.nodes[nid].ui["pos"] = [round(float(pos[0]), 1), round(float(pos[1]), 1)]

    def _push(self, text, redo_ops, undo_ops, merge_key=None):
        self.undo_stack.push(_Edit(text, redo_ops, undo_ops, merge_key))
        self.changed.emit()

    # --- edits ---------------------------------------------------------------

    def add_node(self, type, pos=None, params=None, nid=None):
        spec = self.catalog.get(type)
        if spec is None:
            raise KeyError(f"unknown node type {type!r}")
        nid = nid or self.fresh_id(type)
        if nid in self.workflow.nodes:
            raise ValueError(f"node id {nid!r} is taken")
        values = spec.defaults()
        for p in spec.params:
            preset = self.new_params.get(p.name, _MISSING)
            if preset is not _MISSING and p.check(preset) is None:
                values[p.name] = preset
        values.update(params or {})
        node = Node(type, values, {}, {"pos": [float(pos[0]), float(pos[1])]} if pos else {})
        self._push(f"Add {type}", [(self._insert, nid, node)], [(self._delete, nid)])
        return nid

    def remove_nodes(self, ids):
        ids = [nid for nid in dict.fromkeys(ids) if nid in self.workflow.nodes]
        if not ids:
            return
        gone = set(ids)
        cut = [(nid, port, link) for nid, n in self.workflow.nodes.items() if nid not in gone
               for port, link in n.inputs.items() if link[0] in gone]
        redo = [(self._set_input, nid, port, None) for nid, port, _ in cut]
        redo += [(self._delete, nid) for nid in ids]
        undo = [(self._insert, nid, copy.deepcopy(self.workflow.nodes[nid])) for nid in ids]
        undo += [(self._set_input, nid, port, link) for nid, port, link in cut]
        self._push(f"Delete {len(ids)} node{'s' if len(ids) > 1 else ''}", redo, undo)

    def connect(self, src, out, dst, inp):
        """Link src.out to dst.inp, replacing the input's old link. Raises LinkRefused."""
        problem = self.check_link(src, out, dst, inp)
        if problem:
            raise LinkRefused(problem)
        old = self.workflow.nodes[dst].inputs.get(inp)
        if old == (src, out):
            return
        self._push(f"Connect {src}.{out} -> {dst}.{inp}",
                   [(self._set_input, dst, inp, (src, out))], [(self._set_input, dst, inp, old)])

    def disconnect(self, dst, inp):
        old = self.workflow.nodes[dst].inputs.get(inp)
        if old is None:
            return
        self._push(f"Disconnect {dst}.{inp}", [(self._set_input, dst, inp, None)],
                   [(self._set_input, dst, inp, old)])

    def set_param(self, nid, name, value, merge=False):
        """Set one param. merge=True folds consecutive edits of the same param into one undo step."""
        params = self.workflow.nodes[nid].params
        old = params.get(name, _MISSING)
        if old is not _MISSING and type(old) is type(value) and old == value:
            return
        key = (nid, name) if merge else None
        self._push(f"Set {nid}.{name}", [(self._set_param, nid, name, value)],
                   [(self._set_param, nid, name, old)], key)

    def set_node_ui(self, nid, key, value):
        """Set (None: remove) one entry of a node's UI data, such as its seed mode."""
        old = self.workflow.nodes[nid].ui.get(key)
        if old == value:
            return
        self._push(f"Set {nid} {key}", [(self._set_node_ui, nid, key, value)],
                   [(self._set_node_ui, nid, key, old)])

    def set_sweep(self, block, text="Edit sweep", merge_key=None):
        """Replace the workflow's "sweep" block (None removes it)."""
        old = copy.deepcopy(self.workflow.sweep)
        if old == block:
            return
        self._push(text, [(self._set_sweep, copy.deepcopy(block))], [(self._set_sweep, old)], merge_key)

    def groups(self):
        groups = self.workflow.ui.get("groups")
        return copy.deepcopy(groups) if isinstance(groups, list) else []

    def set_groups(self, groups, text="Edit groups", positions=None):
        """Replace the groups (titled frames); positions: node moves done in the same step."""
        old_groups = self.groups()
        redo, undo = [(self._set_groups, copy.deepcopy(groups))], [(self._set_groups, old_groups)]
        for nid, pos in (positions or {}).items():
            redo.append((self._set_pos, nid, pos))
            undo.append((self._set_pos, nid, self.pos(nid)))
        self._push(text, redo, undo)

    def move(self, positions, previous=None):
        """positions: {node id: (x, y)}; previous: the positions to restore on undo (default: current)."""
        positions = {nid: p for nid, p in positions.items() if nid in self.workflow.nodes}
        if not positions:
            return
        previous = previous or {}
        old = {nid: previous.get(nid, self.pos(nid)) for nid in positions}
        if all(old[nid] is not None and _close(old[nid], positions[nid]) for nid in positions):
            return
        self._push(f"Move {len(positions)} node{'s' if len(positions) > 1 else ''}",
                   [(self._set_pos, nid, p) for nid, p in positions.items()],
                   [(self._set_pos, nid, old[nid]) for nid in positions])

    # --- clipboard -----------------------------------------------------------

    def copy_nodes(self, ids):
        """A JSON-able fragment of these nodes; links to nodes outside it are dropped."""
        ids = [nid for nid in ids if nid in self.workflow.nodes]
        keep = set(ids)
        part = Workflow(nodes={nid: copy.deepcopy(self.workflow.nodes[nid]) for nid in ids})
        for n in part.nodes.values():
            n.inputs = {p: link for p, link in n.inputs.items() if link[0] in keep}
        return {"format": CLIPBOARD_FORMAT, "nodes": part.to_json()["nodes"]}

    def paste(self, fragment, offset=(40.0, 40.0)):
        """Add a copied fragment with fresh ids, shifted by offset. Returns the new ids."""
        if not isinstance(fragment, dict) or fragment.get("format") != CLIPBOARD_FORMAT:
            raise ValueError("the clipboard holds no Latent Loom nodes")
        raw = fragment.get("nodes") or {}
        wf, problems = check({"format": "latentloom.workflow", "version": 1, "nodes": raw}, self.catalog)
        if wf is None or any(p.message.startswith("unknown node type") for p in problems):
            raise ValueError("the clipboard holds nodes this version does not know")
        fresh, taken = {}, set()
        for nid, n in wf.nodes.items():
            fresh[nid] = self.fresh_id(n.type, taken)
            taken.add(fresh[nid])
            known = self.placeholders.get(nid)
            if known is not None and known.type == n.type:  # a copy gets the ports of what it copies
                self.placeholders[fresh[nid]] = known
        redo, undo = [], []
        for nid, n in wf.nodes.items():
            n.inputs = {p: (fresh[s], o) for p, (s, o) in n.inputs.items() if s in fresh}
            pos = n.ui.get("pos")
            if isinstance(pos, list) and len(pos) == 2:
                n.ui["pos"] = [float(pos[0]) + offset[0], float(pos[1]) + offset[1]]
            redo.append((self._insert, fresh[nid], n))
            undo.insert(0, (self._delete, fresh[nid]))
        if redo:
            self._push(f"Paste {len(redo)} node{'s' if len(redo) > 1 else ''}", redo, undo)
        return list(fresh.values())

    def duplicate(self, ids):
        return self.paste(self.copy_nodes(ids))


def _close(a, b):
    return abs(a[0] - b[0]) < 0.05 and abs(a[1] - b[1]) < 0.05


__all__ = ["Document", "LinkRefused", "Problem", "CLIPBOARD_FORMAT"]
