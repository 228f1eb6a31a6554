"""ComfyUI UI-format graphs (versions 0.4 and 1) -> API prompts, as ComfyUI's frontend builds them.

widgets_values follow each node's widget inputs in order, with an extra control_after_generate
value after each seed; links are tuples in 0.4 and objects in 1; reroutes and bypassed nodes
(mode 4) pass their input through, muted nodes (mode 2) are left out, Primitive nodes give their
value to the widget they feed; groups and notes carry nothing to run.
"""
from latentloom.app.core.workflow import Problem, WorkflowError

MUTED, BYPASSED = 2, 4
AFTER_SEED = "control_after_generate"
VIRTUAL = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}

# class_type -> widget names in widgets_values order (only for the classes we map).
WIDGETS = {
    "CheckpointLoaderSimple": ["ckpt_name"],
    "CheckpointLoader": ["config_name", "ckpt_name"],
    "CLIPTextEncode": ["text"],
    "CLIPSetLastLayer": ["stop_at_clip_layer"],
    "EmptyLatentImage": ["width", "height", "batch_size"],
    "KSampler": ["seed", AFTER_SEED, "steps", "cfg", "sampler_name", "scheduler", "denoise"],
    "KSamplerAdvanced": ["add_noise", "noise_seed", AFTER_SEED, "steps", "cfg", "sampler_name", "scheduler",
                         "start_at_step", "end_at_step", "return_with_leftover_noise"],
    "VAEEncodeForInpaint": ["grow_mask_by"],
    "InpaintModelConditioning": ["noise_mask"],
    "LoadImage": ["image", "upload"],
    "SaveImage": ["filename_prefix"],
    "LoraLoader": ["lora_name", "strength_model", "strength_clip"],
    "LoraLoaderModelOnly": ["lora_name", "strength_model"],
    "ImageScale": ["upscale_method", "width", "height", "crop"],
    "ImageScaleBy": ["upscale_method", "scale_by"],
    "LatentUpscale": ["upscale_method", "width", "height", "crop"],
    "LatentUpscaleBy": ["upscale_method", "scale_by"],
    "ControlNetLoader": ["control_net_name"],
    "DiffControlNetLoader": ["control_net_name"],
    "ControlNetApply": ["strength"],
    "ControlNetApplyAdvanced": ["strength", "start_percent", "end_percent"],
    "RescaleCFG": ["multiplier"],
    "VAELoader": ["vae_name"],
    "SolidMask": ["value", "width", "height"],
    "ThresholdMask": ["value"],
    "ImageToMask": ["channel"],
    "LoadImageMask": ["image", "channel", "upload"],
    "ImageFromBatch": ["batch_index", "length"],
    "GrowMask": ["expand", "tapered_corners"],
    "KSamplerSelect": ["sampler_name"],
    "BasicScheduler": ["scheduler", "steps", "denoise"],
    "RandomNoise": ["noise_seed", AFTER_SEED],
    "CFGGuider": ["cfg"],
    "SamplerCustom": ["add_noise", "noise_seed", AFTER_SEED, "cfg"],
    "ConditioningAverage": ["conditioning_to_strength"],
    "ConditioningSetTimestepRange": ["start", "end"],
    "ConditioningSetArea": ["width", "height", "x", "y", "strength"],
    "ConditioningSetAreaPercentage": ["width", "height", "x", "y", "strength"],
    "ConditioningSetAreaStrength": ["strength"],
    "ConditioningSetMask": ["strength", "set_cond_area"],
}
NOT_INPUTS = {AFTER_SEED, "upload"}


def _fail(message, node=None):
    raise WorkflowError([Problem(node, None, message)])


def _links(graph):
    """link id -> (origin id, origin slot, target id, target slot, type)."""
    raw = graph.get("links") or []
    if not isinstance(raw, list):
        _fail("\"links\" must be a list")
    out = {}
    for link in raw:
        if isinstance(link, list) and len(link) >= 5:
            lid, origin, oslot, target, tslot = link[:5]
            ltype = link[5] if len(link) > 5 else None
        elif isinstance(link, dict):
            lid, origin, oslot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
            target, tslot, ltype = link.get("target_id"), link.get("target_slot"), link.get("type")
        else:
            _fail(f"a link must be a list or an object, got {str(link)[:40]!r}")
        if not all(isinstance(x, (int, str)) and not isinstance(x, bool) for x in (lid, origin, target)) \
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in (oslot, tslot)):
            _fail(f"link {str(lid)[:20]!r} has ids or slots of the wrong type")
        out[lid] = (str(origin), oslot, str(target), tslot, ltype)
    return out


def _nodes(graph):
    raw = graph.get("nodes")
    if not isinstance(raw, list):
        _fail("\"nodes\" must be a list")
    nodes = {}
    for n in raw:
        if not isinstance(n, dict) or not isinstance(n.get("type"), str) or isinstance(n.get("id"), bool) \
                or not isinstance(n.get("id"), (int, str)):
            _fail("every node needs an \"id\" and a \"type\"")
        for key in ("inputs", "outputs"):
            if not isinstance(n.get(key, []), list) or not all(isinstance(x, dict) for x in n.get(key, [])):
                _fail(f"\"{key}\" must be a list of objects", str(n["id"]))
        nodes[str(n["id"])] = n
    return nodes


class Graph:
    def __init__(self, graph):
        self.nodes, self.links = _nodes(graph), _links(graph)
        defs = graph.get("definitions")
        subs = defs.get("subgraphs", []) if isinstance(defs, dict) else []
        self.subgraphs = {s.get("id") for s in subs if isinstance(s, dict)} if isinstance(subs, list) else set()

    def source(self, link_id, depth=0):
        """(node id, slot) feeding a link, through reroutes and bypassed nodes; a Primitive node
        gives ("value", v); None when the source is muted or missing."""
        if depth > 200:
            _fail("links loop through reroutes or bypassed nodes")
        link = self.links.get(link_id)
        if link is None:
            return None
        origin, slot, _, _, ltype = link
        node = self.nodes.get(origin)
        if node is None:
            _fail(f"a link comes from missing node {origin!r}")
        mode = node.get("mode", 0)
        if node["type"] == "PrimitiveNode":
            values = node.get("widgets_values") or [None]
            return ("value", values[0] if isinstance(values, list) else None)
        if node["type"] == "Reroute":
            inputs = node.get("inputs", [])
            return self.source(inputs[0].get("link"), depth + 1) if inputs else None
        if mode == MUTED:
            return None
        if mode == BYPASSED:
            return self._bypass(node, slot, ltype, depth)
        return (origin, slot)

    def _bypass(self, node, slot, ltype, depth):
        """A bypassed node's output passes on its input of the same type (same slot first)."""
        inputs = node.get("inputs", [])
        outputs = node.get("outputs", [])
        otype = outputs[slot].get("type") if slot < len(outputs) else ltype
        order = ([inputs[slot]] if slot < len(inputs) else []) + inputs
        for inp in order:
            if inp.get("type") == otype and inp.get("link") is not None:
                return self.source(inp.get("link"), depth + 1)
        return None


def _widget_values(node, names):
    values = node.get("widgets_values", [])
    if isinstance(values, dict):
        return {k: v for k, v in values.items() if k not in NOT_INPUTS}
    if not isinstance(values, list):
        _fail("\"widgets_values\" must be a list", str(node["id"]))
    out = {}
    for name, value in zip(names, values):
        if name not in NOT_INPUTS:
            out[name] = value
    return out


def to_prompt(graph):
    """UI graph -> (API prompt, titles, positions)."""
    if not isinstance(graph, dict):
        _fail("a ComfyUI workflow must be a JSON object")
    g = Graph(graph)
    prompt, titles, positions, problems = {}, {}, {}, []
    for nid, node in g.nodes.items():
        ctype = node["type"]
        if ctype in VIRTUAL or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        if ctype in g.subgraphs:
            problems.append(Problem(nid, None, f"subgraph node {node.get('title') or ctype!r}: subgraphs are "
                                               "not supported; unpack it in ComfyUI (Convert to nodes) first"))
            continue
        names = WIDGETS.get(ctype)
        if names is not None:
            inputs = _widget_values(node, names)
        else:
            raw = node.get("widgets_values")
            inputs = {"widgets_values": raw} if raw not in (None, [], {}) else {}
        for inp in node.get("inputs", []):
            name = inp.get("name") or (inp.get("widget") or {}).get("name")
            if not isinstance(name, str) or inp.get("link") is None:
                continue
            src = g.source(inp["link"])
            if src is None:
                inputs.pop(name, None) if not inp.get("widget") else None
            elif src[0] == "value":
                inputs[name] = src[1]
            else:
                inputs[name] = [src[0], src[1]]
        entry = {"class_type": ctype, "inputs": inputs}
        if names is None:
            entry["_outputs"] = len(node.get("outputs", []))
        prompt[nid] = entry
        if isinstance(node.get("title"), str):
            titles[nid] = node["title"]
        pos = node.get("pos")
        if isinstance(pos, list) and len(pos) == 2 and all(isinstance(x, (int, float)) for x in pos):
            positions[nid] = list(pos)
        elif isinstance(pos, dict) and all(isinstance(pos.get(k), (int, float)) for k in ("0", "1")):
            positions[nid] = [pos["0"], pos["1"]]
    if problems:
        raise WorkflowError(problems)
    return prompt, titles, positions
