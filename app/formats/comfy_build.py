"""The machinery ComfyUI node mappers share: links (Ref), folded nodes and the document builder.

A class_type we do not map becomes a "comfyui:<class_type>" node that keeps its inputs and links,
so validation names it and converting back keeps it (`unsupported`).
"""
from dataclasses import dataclass, field

from latentloom.app.core.workflow import Problem

UNSUPPORTED = "comfyui:"
WHY = "unsupported_because"  # ui key of a kept node: why it does not map
MAX_NODES = 5000


@dataclass(frozen=True)
class Ref:
    node: str
    port: str
    skip: int = 0   # clip refs: CLIPSetLastLayer upstream (our clip_skip)
    rescale: float = 0.0  # model refs: RescaleCFG upstream (our Sampler's guidance_rescale)


@dataclass(frozen=True)
class Folded(Ref):
    """A ComfyUI node that becomes no node of ours (KSamplerSelect, BasicScheduler, RandomNoise,
    DisableNoise, CFGGuider, BasicGuider): its values go into the custom sampler that reads it.
    Any other node that links to it gets it kept as an unsupported node."""
    kind: str = ""
    data: dict = field(default=None, compare=False)


def is_link(value):
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


class Builder:
    def __init__(self, prompt, titles, positions):
        self.prompt, self.titles, self.positions = prompt, titles, positions
        self.nodes, self.out, self.problems = {}, {}, []

    def add(self, nid, type, params=None, inputs=None, cid=None):
        ui = {}
        if cid is not None and nid == cid:
            if self.titles.get(cid):
                ui["title"] = self.titles[cid]
            if cid in self.positions:
                ui["pos"] = self.positions[cid]
        node = {"type": type, "params": dict(params or {}), "inputs": {}}
        if ui:
            node["ui"] = ui
        self.nodes[nid] = node
        for port, ref in (inputs or {}).items():
            if ref is not None:
                node["inputs"][port] = [ref.node, ref.port]
                if isinstance(ref, Folded) and ref.node not in self.nodes:
                    self.keep(ref.node, f"{self.prompt[ref.node]['class_type']} maps only as an input of a "
                                        "SamplerCustom or SamplerCustomAdvanced that Latent Loom can run")
        return node

    def keep(self, cid, why):
        """Keep cid as an unsupported node after all (its inputs' problems were reported once)."""
        n = len(self.problems)
        unsupported(self, cid, why)
        del self.problems[n:]

    def ref(self, cid, name, required=True):
        """The Ref a ComfyUI input links to (None when unlinked)."""
        value = self.prompt[cid]["inputs"].get(name)
        if not is_link(value):
            if required:
                self.problems.append(Problem(cid, f"input {name!r}", "not linked"))
            return None
        src, idx = str(value[0]), value[1]
        refs = self.out.get(src)
        if refs is None:
            self.problems.append(Problem(cid, f"input {name!r}", f"linked to missing node {src!r}"))
            return None
        if not 0 <= idx < len(refs) or refs[idx] is None:
            self.problems.append(Problem(cid, f"input {name!r}", f"node {src!r} has no output {idx}"))
            return None
        return refs[idx]

    def value(self, cid, name, default=None):
        value = self.prompt[cid]["inputs"].get(name, default)
        if is_link(value):
            self.problems.append(Problem(cid, f"input {name!r}", "a link where a value is expected "
                                         "(from a node we cannot evaluate before running)"))
            return default
        return value


def unsupported(b, cid, why=None):
    """Keep the node as it is: literal inputs as params, links as inputs named like ComfyUI's;
    why: what validation says instead of "no equivalent yet"."""
    entry = b.prompt[cid]
    params, links = {}, {}
    for name, value in entry["inputs"].items():
        if is_link(value):
            links[name] = b.ref(cid, name)
        else:
            params[name] = value
    node = b.add(cid, UNSUPPORTED + entry["class_type"], params, links, cid)
    if why:
        node.setdefault("ui", {})[WHY] = why
    return [Ref(cid, str(i)) for i in range(entry.get("_outputs", 8))]
