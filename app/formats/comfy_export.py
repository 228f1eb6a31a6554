"""Latent Loom workflows -> ComfyUI API prompts, for graphs that map.

Sampler + its LatentNoise + Scheduler become one KSampler (KSamplerAdvanced when the scheduler
sets add_noise / start_at_step / end_at_step / return_with_leftover_noise); TextEncode's clip_skip
becomes a CLIPSetLastLayer in front of it; kept "comfyui:<class_type>" nodes go back as they came.
Returns (prompt, notes): notes say what ComfyUI will render differently.
"""
from latentloom.app.core.workflow import Problem, WorkflowError
from latentloom.app.formats.comfy_build import UNSUPPORTED
from latentloom.app.sd.comfy import DROP_PENULTIMATE

OUTPUTS = {"LoadCheckpoint": ["model", "clip", "vae"], "LoadLoRA": ["model", "clip"], "LoadImage": ["image", "mask"],
           "ApplyControlNet": ["positive", "negative"]}
ADVANCED = {"add_noise": True, "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": False}
WINDOW = {k: v for k, v in ADVANCED.items() if k != "add_noise"}
DIFFUSERS_NAMES = {"unipc": "uni_pc", "pndm": "euler"}


class Exporter:
    def __init__(self, wf):
        self.wf, self.prompt, self.notes, self.problems = wf, {}, [], []

    def link(self, nid, port):
        """[source id, output index] for our input `port` of node nid."""
        src, out = self.wf.nodes[nid].inputs[port]
        stype = self.wf.nodes[src].type
        if stype.startswith(UNSUPPORTED):
            return [src, int(out) if out.isdigit() else 0]
        names = OUTPUTS.get(stype, [out])
        return [src, names.index(out) if out in names else 0]

    def add(self, nid, class_type, inputs, links=()):
        node = self.wf.nodes[nid]
        entry = {"class_type": class_type, "inputs": dict(inputs)}
        for theirs, ours in links:
            if ours in node.inputs:
                entry["inputs"][theirs] = self.link(nid, ours)
        title = node.ui.get("title")
        if isinstance(title, str):
            entry["_meta"] = {"title": title}
        self.prompt[nid] = entry
        return entry


def _text(e, nid, p):
    clip = e.link(nid, "clip")
    if p.get("clip_skip", 0):
        skip_id = f"{clip[0]}.clip_skip{p['clip_skip']}"
        e.prompt[skip_id] = {"class_type": "CLIPSetLastLayer",
                             "inputs": {"stop_at_clip_layer": -1 - p["clip_skip"], "clip": clip}}
        clip = [skip_id, 0]
    if p.get("weighting", "comfyui") != "comfyui" and any(c in p["text"] for c in "()[]"):
        e.notes.append(f"node {nid!r}: ComfyUI reads the prompt's brackets its own way (weighting "
                       f"{p['weighting']!r} here)")
    e.add(nid, "CLIPTextEncode", {"text": p["text"], "clip": clip})


def _sampler(e, nid, p):
    node = e.wf.nodes[nid]
    noise = e.wf.nodes[node.inputs["noise"][0]]
    sched = e.wf.nodes[node.inputs["scheduler"][0]]
    sp = sched.params
    name, sigmas = sp["name"], sp["sigmas"]
    if sp.get("sampling") != "comfyui":
        e.notes.append(f"node {nid!r}: its Scheduler uses diffusers sampling; ComfyUI renders "
                       f"{name!r} its own way")
        name, sigmas = DIFFUSERS_NAMES.get(name, name), ("normal" if sigmas == "default" else sigmas)
    rescale = p.get("guidance_rescale", 0.0)
    if rescale and sp.get("sampling") != "comfyui":
        e.notes.append(f"node {nid!r}: ComfyUI's RescaleCFG rescales guidance its own way (diffusers sampling here)")
    common = {"steps": p["steps"], "cfg": p["cfg"], "sampler_name": name, "scheduler": sigmas}
    links = [("model", "model"), ("positive", "positive"), ("negative", "negative"), ("latent_image", "latent")]
    advanced = {k: sp.get(k, v) for k, v in ADVANCED.items()}
    window = {k: v for k, v in advanced.items() if k != "add_noise"} != WINDOW
    custom = (sp.get("keep_penultimate") and name in DROP_PENULTIMATE) or (
        not advanced["add_noise"] and p["denoise"] < 1.0 and not window)
    if custom:
        if window:
            e.problems.append(Problem(nid, None, "SamplerCustom (keep_penultimate) has no start_at_step, "
                                                 "end_at_step or return_with_leftover_noise"))
        entry = _custom(e, nid, p, name, sigmas, noise.params["seed"], advanced["add_noise"], links)
    elif advanced == ADVANCED:
        entry = e.add(nid, "KSampler", {"seed": noise.params["seed"], **common, "denoise": p["denoise"]}, links)
    else:
        if p["denoise"] < 1.0:
            e.problems.append(Problem(nid, "param 'denoise'", "KSamplerAdvanced has no denoise: use 1"))
        entry = e.add(nid, "KSamplerAdvanced", {
            "add_noise": "enable" if advanced["add_noise"] else "disable", "noise_seed": noise.params["seed"],
            **common, "start_at_step": advanced["start_at_step"], "end_at_step": advanced["end_at_step"],
            "return_with_leftover_noise": "enable" if advanced["return_with_leftover_noise"] else "disable"}, links)
    if rescale and "model" in entry["inputs"]:
        e.prompt[f"{nid}.rescale"] = {"class_type": "RescaleCFG",
                                      "inputs": {"model": entry["inputs"]["model"], "multiplier": rescale}}
        entry["inputs"]["model"] = [f"{nid}.rescale", 0]


def _custom(e, nid, p, name, sigmas, seed, add_noise, links):
    """SamplerCustom fed by KSamplerSelect and BasicScheduler: the sigmas as they are (no drop)."""
    sched_id = e.wf.nodes[nid].inputs["scheduler"][0]
    scheduler = {"scheduler": sigmas, "steps": p["steps"], "denoise": p["denoise"]}
    if "model" in e.wf.nodes[sched_id].inputs:
        scheduler["model"] = e.link(sched_id, "model")
    e.prompt[f"{nid}.sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": name}}
    e.prompt[f"{nid}.sigmas"] = {"class_type": "BasicScheduler", "inputs": scheduler}
    return e.add(nid, "SamplerCustom", {"add_noise": add_noise, "noise_seed": seed, "cfg": p["cfg"],
                                        "sampler": [f"{nid}.sampler", 0], "sigmas": [f"{nid}.sigmas", 0]}, links)


COMFY_METHODS = {"LatentUpscale": ("nearest-exact", "bilinear", "area", "bicubic", "bislerp"),
                 "ImageScale": ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")}


def _scale(kind):
    def export(e, nid, p):
        src = ("samples", "latent") if kind == "LatentUpscale" else ("image", "image")
        if p["method"] not in COMFY_METHODS[kind]:
            e.problems.append(Problem(nid, "param 'method'", f"ComfyUI's {kind} has no {p['method']!r}"))
        if not p.get("width") and not p.get("height"):
            if p.get("crop", "disabled") != "disabled":
                e.notes.append(f"node {nid!r}: ComfyUI's {kind}By has no crop")
            e.add(nid, kind + "By", {"upscale_method": p["method"], "scale_by": p["scale"]}, [src])
        else:
            e.add(nid, kind, {"upscale_method": p["method"], "width": p["width"], "height": p["height"],
                              "crop": p.get("crop", "disabled")}, [src])
    return export


def _choice(theirs, name, allowed, param):
    """An exporter for a node whose `param` has ComfyUI equivalents only for some values."""
    def export(e, nid, p):
        if p[param] not in allowed:
            e.problems.append(Problem(nid, f"param {param!r}", f"ComfyUI's {theirs} has no {p[param]!r}"))
            return
        e.add(nid, theirs, *name(p))
    return export


def _same(theirs, params, ports):
    """An exporter for a node whose params and ports have ComfyUI's names."""
    return lambda e, nid, p: e.add(nid, theirs, {k: p[k] for k in params}, [(port, port) for port in ports])


def _threshold(e, nid, p):
    if not p["strict"]:
        e.notes.append(f"node {nid!r}: ComfyUI's ThresholdMask keeps only values above the threshold "
                       "(strict), so a value equal to it becomes 0 there")
    e.add(nid, "ThresholdMask", {"value": p["value"]}, [("mask", "mask")])


EXPORTERS = {
    "LoadCheckpoint": lambda e, nid, p: e.add(nid, "CheckpointLoaderSimple", {"ckpt_name": p["path"]}),
    "TextEncode": _text,
    "EmptyLatent": lambda e, nid, p: e.add(nid, "EmptyLatentImage", {k: p[k] for k in ("width", "height", "batch_size")}),
    "Sampler": _sampler,
    "LatentNoise": None, "Scheduler": None,  # folded into the KSampler
    "VAEDecode": lambda e, nid, p: e.add(nid, "VAEDecode", {}, [("samples", "latent"), ("vae", "vae")]),
    "VAEEncode": lambda e, nid, p: e.add(nid, "VAEEncode", {}, [("pixels", "image"), ("vae", "vae")]),
    "VAEEncodeForInpaint": lambda e, nid, p: e.add(nid, "VAEEncodeForInpaint", {"grow_mask_by": p["grow_mask_by"]},
                                                   [("pixels", "image"), ("vae", "vae"), ("mask", "mask")]),
    "SetLatentMask": lambda e, nid, p: e.add(nid, "SetLatentNoiseMask", {}, [("samples", "latent"), ("mask", "mask")]),
    "LoadImage": lambda e, nid, p: e.add(nid, "LoadImage", {"image": p["path"]}),
    "SaveImage": lambda e, nid, p: e.add(nid, "SaveImage", {"filename_prefix": p["filename_prefix"]},
                                         [("images", "image")]),
    "LoadLoRA": lambda e, nid, p: e.add(nid, "LoraLoader", {"lora_name": p["path"], "strength_model": p["strength_model"],
                                                            "strength_clip": p["strength_clip"]},
                                        [("model", "model"), ("clip", "clip")]),
    "LatentUpscale": _scale("LatentUpscale"),
    "ImageScale": _scale("ImageScale"),
    "LoadControlNet": lambda e, nid, p: e.add(nid, "ControlNetLoader", {"control_net_name": p["path"]}),
    "ApplyControlNet": lambda e, nid, p: e.add(nid, "ControlNetApplyAdvanced", {
        "strength": p["strength"], "start_percent": p["start"], "end_percent": p["end"]},
        [("positive", "positive"), ("negative", "negative"), ("control_net", "controlnet"), ("image", "image")]),
    "LoadVAE": lambda e, nid, p: e.add(nid, "VAELoader", {"vae_name": p["path"]}),
    "Invert": _choice("ImageInvert", lambda p: ({}, [("image", "image")]), ("float",), "precision"),
    "InvertMask": _same("InvertMask", (), ("mask",)),
    "MaskToImage": _same("MaskToImage", (), ("mask",)),
    "SolidMask": _same("SolidMask", ("value", "width", "height"), ()),
    "ThresholdMask": _threshold,
    "ImageToMask": _choice("ImageToMask", lambda p: ({"channel": p["channel"]}, [("image", "image")]),
                           ("red", "green", "blue"), "channel"),
    "LoadMask": _choice("LoadImageMask", lambda p: ({"image": p["path"], "channel": p["channel"]}, []),
                        ("red", "green", "blue", "alpha"), "channel"),
    "ImageFromBatch": lambda e, nid, p: e.add(nid, "ImageFromBatch", {"batch_index": p["index"], "length": p["length"]},
                                              [("image", "image")]),
    "GrowMask": _choice("GrowMask", lambda p: ({"expand": p["pixels"], "tapered_corners": p["shape"] == "diamond"},
                                               [("mask", "mask")]), ("square", "diamond"), "shape"),
    "ConditioningConcat": _same("ConditioningConcat", (), ("conditioning_to", "conditioning_from")),
    "ConditioningAverage": _same("ConditioningAverage", ("conditioning_to_strength",),
                                 ("conditioning_to", "conditioning_from")),
    "ConditioningZeroOut": _same("ConditioningZeroOut", (), ("conditioning",)),
    "ConditioningCombine": _same("ConditioningCombine", (), ("conditioning_1", "conditioning_2")),
    "ConditioningSetTimestepRange": _same("ConditioningSetTimestepRange", ("start", "end"), ("conditioning",)),
    "ConditioningSetArea": _same("ConditioningSetArea", ("width", "height", "x", "y", "strength"), ("conditioning",)),
    "ConditioningSetAreaPercentage": _same("ConditioningSetAreaPercentage", ("width", "height", "x", "y", "strength"),
                                           ("conditioning",)),
    "ConditioningSetAreaStrength": _same("ConditioningSetAreaStrength", ("strength",), ("conditioning",)),
    "ConditioningSetMask": _same("ConditioningSetMask", ("strength", "set_cond_area"), ("conditioning", "mask")),
}


def _kept(e, nid, node):
    e.add(nid, node.type[len(UNSUPPORTED):], node.params, [(port, port) for port in node.inputs])


def to_prompt(wf):
    """A parsed (and default-filled) Workflow -> (API prompt, notes); WorkflowError when a node has
    no ComfyUI equivalent."""
    e = Exporter(wf)
    for nid, node in wf.nodes.items():
        if node.type.startswith(UNSUPPORTED):
            _kept(e, nid, node)
            continue
        if node.type not in EXPORTERS:
            e.problems.append(Problem(nid, None, f"{node.type} has no ComfyUI equivalent to export to"))
            continue
        if EXPORTERS[node.type] is not None:
            EXPORTERS[node.type](e, nid, node.params)
    if e.problems:
        raise WorkflowError(e.problems)
    return e.prompt, e.notes
