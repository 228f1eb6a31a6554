"""An A1111-style 'parameters' text for image browsers, read off the graph upstream of a node."""
from pathlib import Path

SAMPLER_NAMES = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
    "ddim": "DDIM", "ddpm": "DDPM", "pndm": "PLMS", "unipc": "UniPC", "deis": "DEIS",
}


def _upstream(doc, node_id, port):
    link = doc["nodes"].get(node_id, {}).get("inputs", {}).get(port)
    return link[0] if link else None


def _find(doc, start, type):
    """The nearest node of a type upstream of start (breadth first)."""
    seen, todo = set(), [start]
    while todo:
        nid = todo.pop(0)
        if nid in seen or nid not in doc["nodes"]:
            continue
        seen.add(nid)
        node = doc["nodes"][nid]
        if node.get("type") == type and nid != start:
            return nid
        todo += [link[0] for link in node.get("inputs", {}).values()]
    return None


def parameters(doc, node_id):
    sampler = _find(doc, node_id, "Sampler")
    if sampler is None:
        return ""
    nodes = doc["nodes"]
    sp = nodes[sampler].get("params", {})

    def param(nid, name, default=""):
        return nodes[nid].get("params", {}).get(name, default) if nid else default

    pos, neg = _upstream(doc, sampler, "positive"), _upstream(doc, sampler, "negative")
    noise, sched = _upstream(doc, sampler, "noise"), _upstream(doc, sampler, "scheduler")
    size_node = _find(doc, sampler, "EmptyLatent")
    ckpt = _find(doc, sampler, "LoadCheckpoint")
    fields = [("Steps", sp.get("steps", 25))]
    name = param(sched, "name", "")
    if name:
        label = SAMPLER_NAMES.get(name, name)
        fields.append(("Sampler", label))
        if param(sched, "sigmas", "default") != "default":
            fields.append(("Schedule type", param(sched, "sigmas").capitalize()))
    fields += [("CFG scale", sp.get("cfg", 7.5)), ("Seed", param(noise, "seed", 0))]
    if size_node:
        fields.append(("Size", f"{param(size_node, 'width', 512)}x{param(size_node, 'height', 512)}"))
    if ckpt:
        fields.append(("Model", Path(str(param(ckpt, "path", ""))).stem))
    if sp.get("denoise", 1.0) < 1.0:
        fields.append(("Denoising strength", sp.get("denoise")))
    skip = param(pos, "clip_skip", 0)
    if skip:
        fields.append(("Clip skip", skip + 1))
    lines = [str(param(pos, "text", ""))]
    if neg and param(neg, "text", ""):
        lines.append("Negative prompt: " + str(param(neg, "text")))
    lines.append(", ".join(f"{k}: {v}" for k, v in fields))
    return "\n".join(lines)
