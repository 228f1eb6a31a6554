"""ComfyUI API prompts -> Latent Loom documents: each class_type maps onto our nodes.

A prompt is {id: {"class_type", "inputs": {name: literal | [source id, output index]}, "_meta"}}.
Ids and titles survive (KSampler "3" becomes Sampler "3" + LatentNoise "3.noise" + Scheduler
"3.scheduler"). A class_type we do not map becomes a "comfyui:<class_type>" node that keeps its
inputs and links, so validation names it and converting back keeps it.
"""
from dataclasses import replace

from latentloom.app.core.workflow import FORMAT, VERSION, Problem, WorkflowError
from latentloom.app.formats.comfy_build import MAX_NODES, Builder, Ref, is_link, unsupported
from latentloom.app.formats.comfy_custom import FOLDED, custom_sampler

def _checkpoint(b, cid):
    b.add(cid, "LoadCheckpoint", {"path": b.value(cid, "ckpt_name", "")}, cid=cid)
    return [Ref(cid, "model"), Ref(cid, "clip"), Ref(cid, "vae")]


# ComfyUI's models/configs that describe SD 1.x, and the clip skip their layer_idx sets. ComfyUI's
# CheckpointLoader detects the model from the weights and takes only two things from the config:
# v-prediction (parameterization: v) and cond_stage_config's layer_idx (-2: our clip_skip 1).
SD1_CONFIGS = {"v1-inference.yaml": 0, "v1-inference_fp16.yaml": 0, "v1-inpainting-inference.yaml": 0,
               "v1-inference_clip_skip_2.yaml": 1, "v1-inference_clip_skip_2_fp16.yaml": 1, "anything_v3.yaml": 1}


def _checkpoint_with_config(b, cid):
    """The old CheckpointLoader: LoadCheckpoint, when its config is one of ComfyUI's SD 1.x ones."""
    config = b.value(cid, "config_name", "")
    name = config.replace("\\", "/").rsplit("/", 1)[-1] if isinstance(config, str) else None
    if name not in SD1_CONFIGS:
        b.problems.append(Problem(cid, "input 'config_name'", f"{config!r} is not one of ComfyUI's SD 1.x configs "
                                  f"({', '.join(SD1_CONFIGS)}); Latent Loom runs SD 1.x checkpoints without "
                                  "v-prediction (for an SD 1.x checkpoint, use CheckpointLoaderSimple)"))
    model, clip, vae = _checkpoint(b, cid)
    return [model, Ref(clip.node, clip.port, SD1_CONFIGS.get(name, 0)), vae]


def _text(b, cid):
    clip = b.ref(cid, "clip")
    b.add(cid, "TextEncode", {"text": b.value(cid, "text", ""), "clip_skip": clip.skip if clip else 0,
                              "weighting": "comfyui"}, {"clip": clip}, cid)
    return [Ref(cid, "conditioning")]


def _clip_last_layer(b, cid):
    clip = b.ref(cid, "clip")
    layer = b.value(cid, "stop_at_clip_layer", -1)
    if isinstance(layer, bool) or not isinstance(layer, int) or layer > -1:
        b.problems.append(Problem(cid, "input 'stop_at_clip_layer'", f"expected a negative integer, got {layer!r}"))
        layer = -1
    return [Ref(clip.node, clip.port, -layer - 1) if clip else None]


def _rescale_cfg(b, cid):
    """A model patch: the samplers downstream get its multiplier as guidance_rescale."""
    model = b.ref(cid, "model")
    multiplier = b.value(cid, "multiplier", 0.7)
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not 0 <= multiplier <= 1:
        b.problems.append(Problem(cid, "input 'multiplier'", f"expected a number from 0 to 1, got {multiplier!r}"))
        multiplier = 0.0
    return [replace(model, rescale=float(multiplier)) if model else None]


def _empty_latent(b, cid):
    b.add(cid, "EmptyLatent", {k: b.value(cid, k, d) for k, d in
                               (("width", 512), ("height", 512), ("batch_size", 1))}, cid=cid)
    return [Ref(cid, "latent")]


def _sampler(b, cid, advanced=False):
    seed = b.value(cid, "noise_seed" if advanced else "seed", 0)
    model = b.ref(cid, "model")
    b.add(f"{cid}.noise", "LatentNoise", {"seed": seed})
    sched = {"name": b.value(cid, "sampler_name", "euler"), "sigmas": b.value(cid, "scheduler", "normal"),
             "sampling": "comfyui"}
    params = {"steps": b.value(cid, "steps", 20), "cfg": b.value(cid, "cfg", 8.0)}
    if model and model.rescale:
        params["guidance_rescale"] = model.rescale
    if advanced:
        sched.update(add_noise=b.value(cid, "add_noise", "enable") != "disable",
                     start_at_step=b.value(cid, "start_at_step", 0),
                     end_at_step=b.value(cid, "end_at_step", 10000),
                     return_with_leftover_noise=b.value(cid, "return_with_leftover_noise", "disable") == "enable")
    else:
        params["denoise"] = b.value(cid, "denoise", 1.0)
    b.add(f"{cid}.scheduler", "Scheduler", sched, {"model": model})
    b.add(cid, "Sampler", params, {
        "model": model, "positive": b.ref(cid, "positive"), "negative": b.ref(cid, "negative"),
        "latent": b.ref(cid, "latent_image"), "noise": Ref(f"{cid}.noise", "noise"),
        "scheduler": Ref(f"{cid}.scheduler", "scheduler")}, cid)
    return [Ref(cid, "latent")]


def _one(type, params, inputs, out, fixed=None):
    """A node that maps 1:1: params {ours: theirs}, inputs {ours: theirs}, outputs [ours];
    fixed: params of ours set to constants."""
    def build(b, cid):
        values = {ours: b.value(cid, theirs) for ours, theirs in params.items()
                  if b.prompt[cid]["inputs"].get(theirs) is not None}
        values.update(fixed or {})
        b.add(cid, type, values, {ours: b.ref(cid, theirs) for ours, theirs in inputs.items()}, cid)
        return [Ref(cid, port) for port in out]
    return build


def _vae_encode(b, cid):
    b.add(cid, "VAEEncode", {"sizing": "crop"}, {"vae": b.ref(cid, "vae"), "image": b.ref(cid, "pixels")}, cid)
    return [Ref(cid, "latent")]


def _noise_mask(b, cid):
    b.add(cid, "SetLatentMask", {"resize": "bilinear"},
          {"latent": b.ref(cid, "samples"), "mask": b.ref(cid, "mask")}, cid)
    return [Ref(cid, "latent")]


def _inpaint_conditioning(b, cid):
    """InpaintEncode with ComfyUI's masking: the latent, the mask and the masked-image latents for
    a 9-channel model (a 4-channel one ignores the last two); noise_mask false leaves the noise
    mask off the latent. Positive and negative pass through."""
    noise_mask = b.value(cid, "noise_mask", True)
    if not isinstance(noise_mask, bool):
        b.problems.append(Problem(cid, "input 'noise_mask'", f"expected true or false, got {noise_mask!r}"))
        noise_mask = True
    b.add(cid, "InpaintEncode", {"masking": "comfyui", "noise_mask": noise_mask},
          {"vae": b.ref(cid, "vae"), "image": b.ref(cid, "pixels"), "mask": b.ref(cid, "mask")}, cid)
    return [b.ref(cid, "positive"), b.ref(cid, "negative"), Ref(cid, "latent")]


def _lora(b, cid, model_only=False):
    model = b.ref(cid, "model")
    clip = _clip_of(b, model) if model_only else b.ref(cid, "clip")
    strength_clip = 0.0 if model_only else b.value(cid, "strength_clip", 1.0)
    b.add(cid, "LoadLoRA", {"path": b.value(cid, "lora_name", ""), "strength_model": b.value(cid, "strength_model", 1.0),
                            "strength_clip": strength_clip}, {"model": model, "clip": clip}, cid)
    skip = clip.skip if clip else 0
    return [Ref(cid, "model", rescale=model.rescale if model else 0.0), None if model_only else Ref(cid, "clip", skip)]


def _clip_of(b, model):
    """LoraLoaderModelOnly: our LoadLoRA needs a clip; take the one beside the model (strength 0)."""
    node = b.nodes.get(model.node) if model else None
    if node and node["type"] in ("LoadCheckpoint", "LoadLoRA"):
        return Ref(model.node, "clip")
    b.problems.append(Problem(None if model is None else model.node, None,
                              "LoraLoaderModelOnly needs a model straight from a checkpoint or LoRA loader"))
    return None


def _scale(type, by=False):
    def build(b, cid):
        params = {"method": b.value(cid, "upscale_method", "nearest-exact")}
        if by:
            params["scale"] = b.value(cid, "scale_by", 1.0)
        else:
            width, height = b.value(cid, "width", 512), b.value(cid, "height", 512)
            if width == 0 and height == 0:  # ComfyUI: no resize (ours would take the scale)
                params["scale"] = 1.0
            elif type == "LatentUpscale" and width and height:  # ComfyUI: at least 64, then // 8
                width, height = (max(64, v) // 8 * 8 if isinstance(v, int) else v for v in (width, height))
            elif type == "LatentUpscale":  # one side 0: it depends on the latent, sized when run
                params["rounding"] = "comfyui"
            params.update(width=width, height=height)
            crop = b.value(cid, "crop", "disabled")
            if crop != "disabled":
                params["crop"] = crop
        if type == "ImageScale" and (by or "scale" not in params):  # ImageScale 0 x 0 returns it untouched
            params["pixels"] = "comfyui"
        ours, theirs = ("latent", "samples") if type == "LatentUpscale" else ("image", "image")
        b.add(cid, type, params, {ours: b.ref(cid, theirs)}, cid)
        return [Ref(cid, ours)]
    return build


def _controlnet_apply(b, cid):
    """The old single-conditioning node: ComfyUI lets its control act on the unconditional pass too
    (control_apply_to_uncond), which is what ApplyControlNet does; its negative output goes unused."""
    cond = b.ref(cid, "conditioning")
    b.add(cid, "ApplyControlNet", {"strength": b.value(cid, "strength", 1.0)}, {
        "positive": cond, "negative": cond, "controlnet": b.ref(cid, "control_net"), "image": b.ref(cid, "image")}, cid)
    return [Ref(cid, "positive")]


def _save(b, cid, preview=False):
    prefix = "preview" if preview else b.value(cid, "filename_prefix", "ComfyUI")
    b.add(cid, "SaveImage", {"filename_prefix": prefix, "to_8bit": "truncate"}, {"image": b.ref(cid, "images")}, cid)
    return []


COMFY_VAES = {"taesd": "TAESD preview", "taesdxl": "TAESD preview", "taesd3": "TAESD preview",
              "taef1": "TAESD preview", "pixel_space": "pixel-space pass-through"}


def _vae_loader(b, cid):
    name = b.value(cid, "vae_name", "")
    if name in COMFY_VAES:
        b.problems.append(Problem(cid, "input 'vae_name'", f"{name!r} is ComfyUI's built-in "
                                  f"{COMFY_VAES[name]} autoencoder, not a VAE file; Latent Loom has no "
                                  "equivalent: pick a VAE file from models/vae/"))
    b.add(cid, "LoadVAE", {"path": name}, cid=cid)
    return [Ref(cid, "vae")]


def _image_to_mask(b, cid):
    channel = b.value(cid, "channel", "red")
    if channel == "alpha":  # ComfyUI's IMAGEs are RGB: its own node fails on them
        b.problems.append(Problem(cid, "input 'channel'", "ComfyUI's images have no alpha channel (use "
                                  "LoadImage's mask, or LoadImageMask with channel alpha)"))
    b.add(cid, "ImageToMask", {"channel": channel}, {"image": b.ref(cid, "image")}, cid)
    return [Ref(cid, "mask")]


def _grow_mask(b, cid):
    tapered = b.value(cid, "tapered_corners", True)
    b.add(cid, "GrowMask", {"pixels": b.value(cid, "expand", 0), "shape": "diamond" if tapered else "square"},
          {"mask": b.ref(cid, "mask")}, cid)
    return [Ref(cid, "mask")]


MAPPERS = {
    "CheckpointLoaderSimple": _checkpoint,
    "CheckpointLoader": _checkpoint_with_config,
    "CLIPTextEncode": _text,
    "CLIPSetLastLayer": _clip_last_layer,
    "RescaleCFG": _rescale_cfg,
    "EmptyLatentImage": _empty_latent,
    "KSampler": _sampler,
    "KSamplerAdvanced": lambda b, cid: _sampler(b, cid, advanced=True),
    "VAEDecode": _one("VAEDecode", {}, {"vae": "vae", "latent": "samples"}, ["image"]),
    "VAEEncode": _vae_encode,
    "VAEEncodeForInpaint": _one("VAEEncodeForInpaint", {"grow_mask_by": "grow_mask_by"},
                                {"vae": "vae", "image": "pixels", "mask": "mask"}, ["latent"]),
    "SetLatentNoiseMask": _noise_mask,
    "InpaintModelConditioning": _inpaint_conditioning,
    "LoadImage": _one("LoadImage", {"path": "image"}, {}, ["image", "mask"]),
    "SaveImage": _save,
    "PreviewImage": lambda b, cid: _save(b, cid, preview=True),
    "LoraLoader": _lora,
    "LoraLoaderModelOnly": lambda b, cid: _lora(b, cid, model_only=True),
    "ImageScale": _scale("ImageScale"),
    "ImageScaleBy": _scale("ImageScale", by=True),
    "LatentUpscale": _scale("LatentUpscale"),
    "LatentUpscaleBy": _scale("LatentUpscale", by=True),
    "ControlNetLoader": _one("LoadControlNet", {"path": "control_net_name"}, {}, ["controlnet"]),
    "DiffControlNetLoader": _one("LoadControlNet", {"path": "control_net_name"}, {}, ["controlnet"]),
    "ControlNetApply": _controlnet_apply,
    "ControlNetApplyAdvanced": _one("ApplyControlNet", {"strength": "strength", "start": "start_percent",
                                                        "end": "end_percent"},
                                    {"positive": "positive", "negative": "negative", "controlnet": "control_net",
                                     "image": "image"}, ["positive", "negative"]),
    "VAELoader": _vae_loader,
    "ImageInvert": _one("Invert", {}, {"image": "image"}, ["image"], fixed={"precision": "float"}),
    "InvertMask": _one("InvertMask", {}, {"mask": "mask"}, ["mask"]),
    "SolidMask": _one("SolidMask", {"value": "value", "width": "width", "height": "height"}, {}, ["mask"]),
    "ThresholdMask": _one("ThresholdMask", {"value": "value"}, {"mask": "mask"}, ["mask"], fixed={"strict": True}),
    "ImageToMask": _image_to_mask,
    "MaskToImage": _one("MaskToImage", {}, {"mask": "mask"}, ["image"]),
    "LoadImageMask": _one("LoadMask", {"path": "image", "channel": "channel"}, {}, ["mask"]),
    "ImageFromBatch": _one("ImageFromBatch", {"index": "batch_index", "length": "length"}, {"image": "image"},
                           ["image"]),
    "GrowMask": _grow_mask,
    **FOLDED,
    "SamplerCustom": custom_sampler,
    "SamplerCustomAdvanced": lambda b, cid: custom_sampler(b, cid, advanced=True),
    "ConditioningConcat": _one("ConditioningConcat", {}, {"conditioning_to": "conditioning_to",
                                                          "conditioning_from": "conditioning_from"}, ["conditioning"]),
    "ConditioningAverage": _one("ConditioningAverage", {"conditioning_to_strength": "conditioning_to_strength"},
                                {"conditioning_to": "conditioning_to", "conditioning_from": "conditioning_from"},
                                ["conditioning"]),
    "ConditioningZeroOut": _one("ConditioningZeroOut", {}, {"conditioning": "conditioning"}, ["conditioning"]),
    "ConditioningCombine": _one("ConditioningCombine", {}, {"conditioning_1": "conditioning_1",
                                                            "conditioning_2": "conditioning_2"}, ["conditioning"]),
    "ConditioningSetTimestepRange": _one("ConditioningSetTimestepRange", {"start": "start", "end": "end"},
                                         {"conditioning": "conditioning"}, ["conditioning"]),
    **{name: _one(name, {k: k for k in ("width", "height", "x", "y", "strength")}, {"conditioning": "conditioning"},
                  ["conditioning"]) for name in ("ConditioningSetArea", "ConditioningSetAreaPercentage")},
    "ConditioningSetAreaStrength": _one("ConditioningSetAreaStrength", {"strength": "strength"},
                                        {"conditioning": "conditioning"}, ["conditioning"]),
    "ConditioningSetMask": _one("ConditioningSetMask", {"strength": "strength", "set_cond_area": "set_cond_area"},
                                {"conditioning": "conditioning", "mask": "mask"}, ["conditioning"]),
}


def check_prompt(prompt):
    """Structural checks on an API prompt; raises WorkflowError naming every problem."""
    if not isinstance(prompt, dict) or not prompt:
        raise WorkflowError([Problem(None, None, "a ComfyUI prompt must be a non-empty object of node id -> node")])
    if len(prompt) > MAX_NODES:
        raise WorkflowError([Problem(None, None, f"too many nodes ({len(prompt)} > {MAX_NODES})")])
    problems = []
    for cid, entry in prompt.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str) or not entry["class_type"]:
            problems.append(Problem(str(cid), None, "a ComfyUI node needs a \"class_type\" string"))
        elif not isinstance(entry.get("inputs", {}), dict):
            problems.append(Problem(str(cid), None, "\"inputs\" must be an object"))
    if problems:
        raise WorkflowError(problems)


def _order(prompt):
    """Node ids, sources first; a cycle is an error naming its nodes."""
    order, state = [], {}
    for start in prompt:
        if start in state:
            continue
        stack = [(start, iter(_sources(prompt, start)))]
        state[start] = 1
        while stack:
            nid, it = stack[-1]
            src = next(it, None)
            if src is None:
                stack.pop()
                state[nid] = 2
                order.append(nid)
            elif state.get(src) == 1:
                raise WorkflowError([Problem(src, None, f"cycle through node {src!r} and node {nid!r}")])
            elif src not in state:
                state[src] = 1
                stack.append((src, iter(_sources(prompt, src))))
    return order


def _sources(prompt, nid):
    return [str(v[0]) for v in prompt[nid].get("inputs", {}).values() if is_link(v) and str(v[0]) in prompt]


def to_document(prompt, titles=None, positions=None, source="comfyui-api"):
    """An API prompt (already unwrapped) -> a Latent Loom document (validated later)."""
    check_prompt(prompt)
    prompt = {str(k): {**v, "inputs": dict(v.get("inputs", {}))} for k, v in prompt.items()}
    titles = dict(titles or {})
    for cid, entry in prompt.items():
        meta = entry.get("_meta")
        if isinstance(meta, dict) and isinstance(meta.get("title"), str) and cid not in titles:
            titles[cid] = meta["title"]
    b = Builder(prompt, titles, positions or {})
    for cid in _order(prompt):
        mapper = MAPPERS.get(prompt[cid]["class_type"], unsupported)
        b.out[cid] = mapper(b, cid)
    if b.problems:
        raise WorkflowError(b.problems)
    return {"format": FORMAT, "version": VERSION, "nodes": b.nodes, "ui": {"imported_from": source}}
