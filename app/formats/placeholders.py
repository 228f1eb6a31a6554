"""Placeholders for the ComfyUI nodes we keep but cannot run ("comfyui:<class_type>"), Qt-free.

The reader keeps such a node's literal inputs as params and its links as inputs named like
ComfyUI's; nodes downstream link to its outputs by index ("0", "1"...). The editor draws it from
the spec built here: one input port per link into it, one output port per output something reads,
each typed like the port at the other end (ANY when that end is another placeholder), no params
(its data is shown, read-only, in the help), and a function that refuses to run.
"""
import json

from latentloom.app.core.spec import NodeSpec, Port
from latentloom.app.formats.comfy_build import UNSUPPORTED

ANY = "*"
CATEGORY = "unsupported"
VALUE_CHARS = 120


def is_placeholder(node_type):
    return isinstance(node_type, str) and node_type.startswith(UNSUPPORTED)


def class_type(node_type):
    return node_type[len(UNSUPPORTED):]


def title(node):
    """What the canvas calls it: its ComfyUI title, else its class_type, marked unsupported."""
    ctype, given = class_type(node.type), node.ui.get("title")
    if isinstance(given, str) and given.strip() and given != ctype:
        return f"{given} ({ctype}, unsupported)"
    return f"{ctype} (unsupported)"


def _port_type(wf, catalog, nid, port, output):
    node = wf.nodes.get(nid)
    spec = catalog.get(node.type) if node is not None else None
    found = (spec.output(port) if output else spec.input(port)) if spec is not None else None
    return found.type if found is not None else ANY


def _index(name):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def ports(wf, nid, catalog):
    """([(input name, type)], [(output name, type)]) for every link into and out of node nid."""
    inputs = [(name, _port_type(wf, catalog, src, out, output=True))
              for name, (src, out) in wf.nodes[nid].inputs.items()]
    outputs = {}
    for other, node in wf.nodes.items():
        for name, (src, out) in node.inputs.items():
            if src == nid and outputs.get(out, ANY) == ANY:
                outputs[out] = _port_type(wf, catalog, other, name, output=False)
    return inputs, sorted(outputs.items(), key=lambda item: _index(item[0]))


def _show(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "…"


def data_lines(node):
    """The node's original data, one "name: value" line each (values as JSON, long ones cut)."""
    return [f"{name}: {_show(value)}" for name, value in node.params.items()]


def describe(node):
    ctype, given = class_type(node.type), node.ui.get("title")
    named = f" (title {given!r})" if isinstance(given, str) and given else ""
    why = node.ui.get("unsupported_because")
    why = why if isinstance(why, str) and why else "Latent Loom has no equivalent yet"
    lines = [f"Unsupported ComfyUI node {ctype!r}{named}: {why}, "
             "so the workflow cannot run while it is here.",
             "It keeps its data and links: saving keeps it, and `latentloom convert --to comfyui-api` "
             "gives it back as it came."]
    data = data_lines(node)
    return "\n".join(lines + (["", "Its data (read-only):", *data] if data else []))


def unsupported(problems):
    """The validation problems that name a kept unsupported ComfyUI node."""
    return [p for p in problems if p.message.startswith("unsupported ComfyUI node ")]


def _cannot_run(ctx, **_):
    raise RuntimeError("an unsupported ComfyUI node cannot run")


def spec(wf, nid, catalog):
    """The editor's spec for placeholder nid, drawn from the workflow as it is now (the editor keeps
    it while the node lives, so undoing a delete, or pasting a copy, finds the ports its links need)."""
    node = wf.nodes[nid]
    inputs, outputs = ports(wf, nid, catalog)
    return NodeSpec(type=node.type, fn=_cannot_run, category=CATEGORY, help=describe(node),
                    inputs=tuple(Port(name, type, optional=True) for name, type in inputs),
                    outputs=tuple(Port(name, type) for name, type in outputs))
