"""SamplerCustom and SamplerCustomAdvanced: the nodes that feed them (KSamplerSelect, BasicScheduler,
RandomNoise, DisableNoise, CFGGuider, BasicGuider) fold into the KSampler nodes they equal."""
from latentloom.app.core.workflow import Problem
from latentloom.app.formats.comfy_build import Folded, Ref, is_link, unsupported
from latentloom.app.sd.comfy import DROP_PENULTIMATE


def _folded(kind, build):
    def mapper(b, cid):
        return [Folded(cid, "0", kind=kind, data=build(b, cid))]
    return mapper


FOLDED = {
    "KSamplerSelect": _folded("sampler", lambda b, cid: {"name": b.value(cid, "sampler_name", "euler")}),
    "BasicScheduler": _folded("sigmas", lambda b, cid: {
        "model": b.ref(cid, "model"), "scheduler": b.value(cid, "scheduler", "normal"),
        "steps": b.value(cid, "steps", 20), "denoise": b.value(cid, "denoise", 1.0)}),
    "RandomNoise": _folded("noise", lambda b, cid: {"seed": b.value(cid, "noise_seed", 0), "add": True}),
    "DisableNoise": _folded("noise", lambda b, cid: {"seed": 0, "add": False}),  # its seed is 0
    "CFGGuider": _folded("guider", lambda b, cid: {
        "model": b.ref(cid, "model"), "positive": b.ref(cid, "positive"), "negative": b.ref(cid, "negative"),
        "cfg": b.value(cid, "cfg", 8.0)}),
    "BasicGuider": _folded("guider", lambda b, cid: {  # cfg 1: the negative is never used
        "model": b.ref(cid, "model"), "positive": b.ref(cid, "conditioning"),
        "negative": b.ref(cid, "conditioning"), "cfg": 1.0}),
}
FOLDS_FROM = {"sampler": "KSamplerSelect", "sigmas": "BasicScheduler", "noise": "RandomNoise or DisableNoise",
              "guider": "CFGGuider or BasicGuider"}


def _unfoldable(b, cid, ports):
    """Why this custom sampler cannot become LatentNoise + Scheduler + Sampler (None when it can)."""
    for port in ports:
        value = b.prompt[cid]["inputs"].get(port)
        src = str(value[0]) if is_link(value) else None
        first = (b.out.get(src) or [None])[0] if src in b.prompt else None
        if src in b.prompt and not (isinstance(first, Folded) and first.kind == port):
            return f"input {port!r} comes from {b.prompt[src]['class_type']}; only {FOLDS_FROM[port]} maps here"
    users = [u for u, e in b.prompt.items() for v in e["inputs"].values()
             if is_link(v) and str(v[0]) == cid and v[1] == 1]
    if users:
        return (f"its output 'denoised_output' (used by node {users[0]!r}) is not supported: Latent Loom's "
                "Sampler gives only the final latent ('output')")
    return None


def custom_sampler(b, cid, advanced=False):
    """SamplerCustom(Advanced) fed by KSamplerSelect and BasicScheduler (and, advanced, RandomNoise /
    DisableNoise and CFGGuider / BasicGuider) renders as KSampler: the same noise, sigmas and loop."""
    ports = ("noise", "guider", "sampler", "sigmas") if advanced else ("sampler", "sigmas")
    why = _unfoldable(b, cid, ports)
    if why is None:
        refs = {port: b.ref(cid, port) for port in ports}
        if None in refs.values():
            return [None, None]  # a missing link, reported by b.ref
        folded = {port: ref.data for port, ref in refs.items()}
        name = folded["sampler"]["name"]
    if why:
        return unsupported(b, cid, why)
    sigmas = folded["sigmas"]
    if advanced:
        guider, noise = folded["guider"], folded["noise"]
        model, positive, negative, cfg = guider["model"], guider["positive"], guider["negative"], guider["cfg"]
        seed, add_noise = noise["seed"], noise["add"]
    else:
        model, positive, negative = b.ref(cid, "model"), b.ref(cid, "positive"), b.ref(cid, "negative")
        cfg, seed, add_noise = b.value(cid, "cfg", 8.0), b.value(cid, "noise_seed", 0), b.value(cid, "add_noise", True)
        if not isinstance(add_noise, bool):
            b.problems.append(Problem(cid, "input 'add_noise'", f"expected true or false, got {add_noise!r}"))
    b.add(f"{cid}.noise", "LatentNoise", {"seed": seed})
    sched = {"name": name, "sigmas": sigmas["scheduler"], "sampling": "comfyui"}
    if add_noise is False:
        sched["add_noise"] = False
    if name in DROP_PENULTIMATE:  # BasicScheduler keeps the sigma KSampler drops for these
        sched["keep_penultimate"] = True
    smodel = sigmas["model"]
    b.add(f"{cid}.scheduler", "Scheduler", sched, {"model": smodel and Ref(smodel.node, smodel.port)})
    params = {"steps": sigmas["steps"], "cfg": cfg, "denoise": sigmas["denoise"]}
    if model and model.rescale:
        params["guidance_rescale"] = model.rescale
    b.add(cid, "Sampler", params, {
        "model": model, "positive": positive, "negative": negative, "latent": b.ref(cid, "latent_image"),
        "noise": Ref(f"{cid}.noise", "noise"), "scheduler": Ref(f"{cid}.scheduler", "scheduler")}, cid)
    return [Ref(cid, "latent"), None]
