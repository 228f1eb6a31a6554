"""A1111 'parameters' text -> the equivalent txt2img (or img2img) Latent Loom graph."""
import re

from latentloom.app.core.workflow import FORMAT, VERSION, Problem, WorkflowError

FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
LORA = re.compile(r"<lora:([^:>]+)((?::[^:>]*)*)>")
MAX_TEXT = 1_000_000

SAMPLERS = {  # A1111 sampler label -> (ComfyUI sampler_name, scheduler implied by the label)
    "euler": ("euler", None), "euler a": ("euler_ancestral", None), "heun": ("heun", None),
    "dpm2": ("dpm_2", None), "dpm2 a": ("dpm_2_ancestral", None), "lms": ("lms", None),
    "dpm++ 2m": ("dpmpp_2m", None), "dpm++ sde": ("dpmpp_sde", None), "dpm++ 2m sde": ("dpmpp_2m_sde", None),
    "ddim": ("ddim", "ddim_uniform"), "plms": ("ddim", "ddim_uniform"), "unipc": ("uni_pc", None),
    "lcm": ("lcm", None), "ddpm": ("ddpm", None), "deis": ("deis", None),
}
SCHEDULES = {"automatic": "normal", "uniform": "normal", "normal": "normal", "karras": "karras",
             "exponential": "exponential", "sgm uniform": "sgm_uniform", "simple": "simple",
             "ddim": "ddim_uniform", "beta": "beta"}


def split(text):
    """(prompt, negative, {field: value}) of a parameters text."""
    lines = text.strip().split("\n")
    fields = {}
    if lines and FIELD.findall(lines[-1]) and lines[-1].lstrip().startswith("Steps:"):
        for key, value in FIELD.findall(lines.pop()):
            if value.startswith('"') and value.endswith('"') and len(value) > 1:
                value = value[1:-1]
            fields[key.strip()] = value.strip()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    return "\n".join(prompt), "\n".join(negative), fields


def _number(fields, key, kind, default, problems):
    if key not in fields:
        return default
    try:
        return kind(float(fields[key])) if kind is int else kind(fields[key])
    except ValueError:
        problems.append(Problem(None, None, f"A1111 field {key!r}: {fields[key]!r} is not a number"))
        return default


def _sampler(fields, problems):
    label = fields.get("Sampler", "Euler")
    key = label.lower()
    implied = None
    for suffix, sched in ((" karras", "karras"), (" exponential", "exponential")):
        if key.endswith(suffix) and key[:-len(suffix)] in SAMPLERS:
            key, implied = key[:-len(suffix)], sched
    if key not in SAMPLERS:
        problems.append(Problem(None, None, f"A1111 sampler {label!r} is not supported"))
        return "euler", "normal"
    name, default = SAMPLERS[key]
    schedule = fields.get("Schedule type", "").lower()
    if schedule and schedule not in SCHEDULES:
        problems.append(Problem(None, None, f"A1111 schedule type {fields['Schedule type']!r} is not supported"))
    return name, SCHEDULES.get(schedule) or implied or default or "normal"


def _loras(prompt, problems):
    loras = []
    for m in LORA.finditer(prompt):
        args = [a for a in m.group(2).split(":")[1:]]
        try:
            te = float(args[0]) if args and args[0] else 1.0
            unet = float(args[1]) if len(args) > 1 and args[1] else te
        except ValueError:
            problems.append(Problem(None, None, f"LoRA tag {m.group(0)!r}: the weights are not numbers"))
            continue
        loras.append((m.group(1).strip(), unet, te))
    return LORA.sub("", prompt), loras


def to_document(text):
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise WorkflowError([Problem(None, None, "the A1111 parameters text is missing or too long")])
    prompt, negative, fields = split(text)
    problems = []
    prompt, loras = _loras(prompt, problems)
    negative, _ = _loras(negative, problems)
    steps = _number(fields, "Steps", int, 20, problems)
    cfg = _number(fields, "CFG scale", float, 7.0, problems)
    seed = _number(fields, "Seed", int, 0, problems)
    skip = _number(fields, "Clip skip", int, 1, problems)
    denoise = _number(fields, "Denoising strength", float, None, problems)
    width, height = 512, 512
    if "Size" in fields:
        m = re.fullmatch(r"(\d+)x(\d+)", fields["Size"])
        if m is None:
            problems.append(Problem(None, None, f"A1111 field 'Size': {fields['Size']!r} is not WIDTHxHEIGHT"))
        else:
            width, height = int(m.group(1)), int(m.group(2))
    name, schedule = _sampler(fields, problems)
    model = fields.get("Model", "v1-5-pruned-emaonly")
    nodes = {"ckpt": {"type": "LoadCheckpoint", "params": {"path": _file(model)}}}
    model_ref, clip_ref = ["ckpt", "model"], ["ckpt", "clip"]
    for i, (lora, unet_w, te_w) in enumerate(loras, 1):
        nodes[f"lora{i}"] = {"type": "LoadLoRA", "params": {"path": _file(lora), "strength_model": unet_w,
                                                           "strength_clip": te_w},
                             "inputs": {"model": model_ref, "clip": clip_ref}}
        model_ref, clip_ref = [f"lora{i}", "model"], [f"lora{i}", "clip"]
    for nid, body in (("positive", prompt), ("negative", negative)):
        nodes[nid] = {"type": "TextEncode", "inputs": {"clip": clip_ref},
                      "params": {"text": body, "clip_skip": max(skip - 1, 0), "weighting": "a1111"}}
    hires = None
    if "Hires upscale" in fields or "Hires resize" in fields:
        hires = _hires(fields, width, height, steps, cfg, denoise, problems)
    if problems:
        raise WorkflowError(problems)
    img2img = denoise is not None and hires is None
    if img2img:
        nodes["image"] = {"type": "LoadImage", "params": {"path": ""}}
        nodes["latent"] = {"type": "VAEEncode", "params": {"sizing": "crop"},
                           "inputs": {"vae": ["ckpt", "vae"], "image": ["image", "image"]}}
    else:
        nodes["latent"] = {"type": "EmptyLatent", "params": {"width": width, "height": height, "batch_size": 1}}
    nodes["noise"] = {"type": "LatentNoise", "params": {"seed": seed}}
    sched = {"name": name, "sigmas": schedule, "sampling": "comfyui"}
    if img2img:  # A1111 (img2img_fix_steps off): the last int(min(s, 0.999) * Steps) + 1 steps of Steps
        sched["start_at_step"] = steps - int(min(denoise, 0.999) * steps) - 1
    nodes["scheduler"] = {"type": "Scheduler", "params": sched, "inputs": {"model": model_ref}}
    nodes["sampler"] = {"type": "Sampler", "params": {"steps": steps, "cfg": cfg, "denoise": 1.0},
                        "inputs": {"model": model_ref, "positive": ["positive", "conditioning"],
                                   "negative": ["negative", "conditioning"], "latent": ["latent", "latent"],
                                   "noise": ["noise", "noise"], "scheduler": ["scheduler", "scheduler"]}}
    last = "sampler"
    if hires:
        last = _hires_pass(nodes, hires, model_ref)
    nodes["decode"] = {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": [last, "latent"]}}
    nodes["save"] = {"type": "SaveImage", "params": {"filename_prefix": "a1111"},
                     "inputs": {"image": ["decode", "image"]}}
    return {"format": FORMAT, "version": VERSION, "nodes": nodes, "ui": {"imported_from": "a1111"}}


def _file(name):
    return name if name.lower().endswith((".safetensors", ".ckpt")) else name + ".safetensors"


# -- the hires fix --------------------------------------------------------------------------
LATENT_UPSCALERS = {"latent": "bilinear", "latent (antialiased)": "bilinear-antialias",
                    "latent (bicubic)": "bicubic", "latent (bicubic antialiased)": "bicubic-antialias",
                    "latent (nearest)": "nearest", "latent (nearest-exact)": "nearest-exact"}
IMAGE_UPSCALERS = {"none": "lanczos", "lanczos": "lanczos", "nearest": "nearest-exact"}


def _hires(fields, width, height, steps, cfg, denoise, problems):
    """The second pass's settings: A1111's init_hr sizes, floored to the latent grid ("Hires resize:
    WxH" with both sides crops to that aspect, as A1111 truncates), upscaler, steps, cfg, sampler,
    prompts; what is not given is the first pass's."""
    crop = "disabled"
    resize = fields.get("Hires resize", "0x0")
    m = re.fullmatch(r"(\d+)x(\d+)", resize)
    if m is None:
        problems.append(Problem(None, None, f"A1111 field 'Hires resize': {resize!r} is not WIDTHxHEIGHT"))
        return None
    rx, ry = int(m.group(1)), int(m.group(2))
    if not width or not height:
        problems.append(Problem(None, None, f"A1111 field 'Size': {width}x{height} has no area"))
        return None
    if rx == 0 and ry == 0:
        scale = _number(fields, "Hires upscale", float, 2.0, problems)
        if not 0 < scale <= 16:  # also NaN and infinities
            problems.append(Problem(None, None, f"A1111 field 'Hires upscale': {fields['Hires upscale']!r} "
                                                "is not a scale between 0 and 16"))
            return None
        to_w, to_h = int(width * scale), int(height * scale)
    elif ry == 0:
        to_w, to_h = rx, rx * height // width
    elif rx == 0:
        to_w, to_h = ry * width // height, ry
    else:
        to_w, to_h, crop = rx, ry, "center"
    upscaler = fields.get("Hires upscaler", "Latent")
    method = LATENT_UPSCALERS.get(upscaler.lower()) or IMAGE_UPSCALERS.get(upscaler.lower(), "lanczos")
    own = {ours: fields[key] for ours, key in (("Sampler", "Hires sampler"), ("Schedule type", "Hires schedule type"))
           if key in fields}
    return {"width": max(8, to_w // 8 * 8), "height": max(8, to_h // 8 * 8), "crop": crop, "method": method,
            "latent": upscaler.lower() in LATENT_UPSCALERS, "upscaler": upscaler,
            "denoise": 0.7 if denoise is None else denoise,
            "steps": _number(fields, "Hires steps", int, 0, problems) or steps,
            "cfg": _number(fields, "Hires CFG Scale", float, cfg, problems),
            "sched": _sampler({**fields, **own}, problems) if own else None,
            "texts": {"positive": fields.get("Hires prompt"), "negative": fields.get("Hires negative prompt")}}


def _hires_pass(nodes, hp, model_ref):
    """First pass -> upscale (latent, or decode + image upscale + encode) -> a second Sampler at the
    denoising strength. Upscalers we lack (ESRGAN and other models) become PIL lanczos, and the
    upscale node's title says so. Returns the id of the last Sampler."""
    size = {"width": hp["width"], "height": hp["height"], "method": hp["method"], "crop": hp["crop"]}
    if hp["latent"]:
        nodes["upscale"] = {"type": "LatentUpscale", "params": size, "inputs": {"latent": ["sampler", "latent"]}}
        source = ["upscale", "latent"]
    else:
        nodes["first_decode"] = {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"],
                                                                 "latent": ["sampler", "latent"]}}
        nodes["upscale"] = {"type": "ImageScale", "params": size, "inputs": {"image": ["first_decode", "image"]}}
        if hp["upscaler"].lower() not in IMAGE_UPSCALERS:
            nodes["upscale"]["ui"] = {"title": f"Hires upscale: {hp['upscaler']} is not available, lanczos instead"}
        nodes["hires_encode"] = {"type": "VAEEncode", "inputs": {"vae": ["ckpt", "vae"], "image": ["upscale", "image"]}}
        source = ["hires_encode", "latent"]
    conds = {}
    for which, text in hp["texts"].items():
        conds[which] = [which, "conditioning"]
        if text:
            nid = f"hires_{which}"
            nodes[nid] = {**nodes[which], "params": {**nodes[which]["params"], "text": LORA.sub("", text)}}
            conds[which] = [nid, "conditioning"]
    scheduler = ["scheduler", "scheduler"]
    if hp["sched"] is not None:
        name, sigmas = hp["sched"]
        nodes["hires_scheduler"] = {"type": "Scheduler", "inputs": {"model": model_ref},
                                    "params": {"name": name, "sigmas": sigmas, "sampling": "comfyui"}}
        scheduler = ["hires_scheduler", "scheduler"]
    nodes["hires"] = {"type": "Sampler", "params": {"steps": hp["steps"], "cfg": hp["cfg"], "denoise": hp["denoise"]},
                      "inputs": {"model": model_ref, "positive": conds["positive"], "negative": conds["negative"],
                                 "latent": source, "noise": ["noise", "noise"], "scheduler": scheduler}}
    return "hires"
