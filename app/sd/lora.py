"""LoRA files on the shared modules: read once, inject once per checkpoint, activate per run.

A handle's `loras` describe a stack; nothing is merged into the weights. Adapters live as PEFT
layers inside the shared U-Net / text encoder (loaded with diffusers' own readers and loaders),
and `activated` switches exactly one stack on while a node uses the module.
"""
import hashlib
import re
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from latentloom.app.core.errors import UserError

PARTS = ("unet", "text_encoder")
LABEL = {"unet": "U-Net", "text_encoder": "text encoder"}
MAX_FILES = 16  # LoRA state dicts kept in memory (to re-inject after a checkpoint is evicted)
A_KEY = re.compile(r"(lora_A|lora[._]down|lora_linear_layer\.down)\.weight$")

_files = OrderedDict()  # identity -> (state_dict, network_alphas, metadata)
_files_lock = threading.Lock()
reads = 0  # LoRA files actually read (for tests and reports)


def adapter_name(identity):
    """PEFT adapter names may not contain dots: derive a short stable one from the file identity."""
    return "lora_" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def read(path, identity):
    """The file's diffusers-layout state dict (kohya files converted), read once per identity."""
    global reads
    with _files_lock:
        if identity in _files:
            _files.move_to_end(identity)
            return _files[identity]
        name = Path(path).name
        if Path(path).suffix.lower() != ".safetensors":
            raise UserError(f"LoRA {name}: only .safetensors LoRA files are supported (others can run code "
                            "when loaded)")
        from diffusers import StableDiffusionPipeline
        try:
            with _quiet():
                state, alphas, metadata = StableDiffusionPipeline.lora_state_dict(
                    str(path), use_safetensors=True, local_files_only=True, return_lora_metadata=True)
        except Exception as e:
            raise UserError(f"LoRA {name}: not a readable LoRA file ({_first_line(e)})") from e
        reads += 1
        if not state or not all("lora" in k for k in state):
            raise UserError(f"LoRA {name}: unknown key layout (not a diffusers/PEFT or kohya LoRA)")
        others = sorted({k.split(".")[0] for k in state if k.split(".")[0] not in PARTS})
        if others:
            raise UserError(f"LoRA {name}: keys under {', '.join(others[:4])} fit no part of a Stable Diffusion "
                            "1.x model (an unsupported layout, or a LoRA for another architecture)")
        _files[identity] = (state, alphas, metadata)
        while len(_files) > MAX_FILES:
            _files.popitem(last=False)
        return _files[identity]


def prepare(env, model_key, clip_key, path, identity):
    """LoadLoRA: inject the file into the U-Net of model_key and the text encoder of clip_key.

    On failure both are left as they were and a UserError names the file."""
    data = read(path, identity)
    if not any(_part_keys(data[0], p) for p in PARTS):
        raise UserError(f"LoRA {Path(path).name}: no U-Net or text encoder weights found")
    done = []
    try:
        for key, part in ((model_key, "unet"), (clip_key, "text_encoder")):
            comps = env.components(key)
            with comps["lock"]:
                if part == "unet" and "fused_lora" in comps:
                    _unfuse(comps)  # adapters are loaded and dropped on unfused weights
                _drop_stale(comps, part, path, identity)
                _ensure(comps, part, path, identity, data)
                done.append((comps, part))
    except Exception:
        for comps, part in done:
            with comps["lock"]:
                _forget(comps, part, adapter_name(identity))
        raise


@contextmanager
def activated(env, comps, loras, part):
    """Hold the checkpoint's lock while `part` ("unet" or "text_encoder") runs with exactly `loras` active.

    Duplicates of one file add their strengths; zero strengths and files without weights for `part`
    are left out; an empty stack disables every adapter (the plain model). The previous state is
    restored on exit, so outside these blocks the modules behave as plain.

    A compiled runtime (comps["fused_lora"]) fuses the U-Net's stack into its weights instead
    and keeps it fused until a run asks for another stack (see `_fused`)."""
    if part == "unet" and "fused_lora" in comps:
        with comps["lock"]:
            _fused(env, comps, loras)
            yield
        return
    with comps["lock"]:
        stack = OrderedDict()
        for ref in loras:
            name = adapter_name(ref.identity)
            if _ensure(comps, part, ref.path, ref.identity):
                stack[name] = stack.get(name, 0.0) + float(ref.strength)
        stack = tuple((n, s) for n, s in stack.items() if s != 0.0)
        active = _book(comps)["active"]
        previous = active.get(part, ())
        _apply(comps[part], part, stack)
        active[part] = stack
        try:
            yield
        finally:
            _apply(comps[part], part, previous)
            active[part] = previous


def _fused(env, comps, loras):
    """Fuse exactly `loras` into the U-Net's weights (fuse_lora); unfuse first when the stack changed.

    Same stack, same strengths: nothing to do, and a compiled U-Net sees the same modules and flags."""
    want = tuple((adapter_name(r.identity), float(r.strength)) for r in loras)
    if comps["fused_lora"] == want:
        return
    unet = comps["unet"]
    _unfuse(comps)
    stack = OrderedDict()
    for ref in loras:
        name = adapter_name(ref.identity)
        if _ensure(comps, "unet", ref.path, ref.identity):
            stack[name] = stack.get(name, 0.0) + float(ref.strength)
    stack = tuple((n, s) for n, s in stack.items() if s != 0.0)
    _apply(unet, "unet", stack)
    if stack:
        comps["lora_saved"] = _base_weights(unet, [n for n, _ in stack])
        with _quiet():
            unet.fuse_lora(adapter_names=[n for n, _ in stack])
        _refresh_fused_qkv(unet)
    comps["fused_lora"] = want


def _unfuse(comps):
    """unfuse_lora, then the exact weights from before the fuse (subtracting leaves rounding behind)."""
    if comps.get("fused_lora"):
        import torch
        with _quiet():
            comps["unet"].unfuse_lora()
        with torch.no_grad():
            for layer, (weight, bias) in comps.pop("lora_saved", {}).items():
                layer.weight.copy_(weight)
                if bias is not None:
                    layer.bias.copy_(bias)
        _refresh_fused_qkv(comps["unet"])
    comps["fused_lora"] = ()


def _base_weights(model, names):
    """Copies of the base layers' weights (and biases) that fusing `names` will change."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    saved = {}
    for m in model.modules():
        if isinstance(m, BaseTunerLayer) and any(n in getattr(m, "lora_A", {}) for n in names):
            base = m.get_base_layer()
            saved[base] = (base.weight.detach().clone(),
                           base.bias.detach().clone() if getattr(base, "bias", None) is not None else None)
    return saved


def _refresh_fused_qkv(unet):
    """fuse_qkv_projections copied q/k/v weights into to_qkv / to_kv: copy them again after a LoRA
    (un)fuse changed them, in place, so a compiled graph keeps its parameters."""
    import torch
    from diffusers.models.attention_processor import Attention

    def weight(layer, attr):
        base = layer.get_base_layer() if hasattr(layer, "get_base_layer") else layer
        return getattr(base, attr)
    with torch.no_grad():
        for m in unet.modules():
            if not (isinstance(m, Attention) and getattr(m, "fused_projections", False)):
                continue
            fused, parts = (m.to_kv, (m.to_k, m.to_v)) if m.is_cross_attention else (m.to_qkv, (m.to_q, m.to_k, m.to_v))
            fused.weight.copy_(torch.cat([weight(p, "weight") for p in parts]))
            if m.use_bias:
                fused.bias.copy_(torch.cat([weight(p, "bias") for p in parts]))


def _ensure(comps, part, path, identity, data=None):
    """Load the file's `part` weights into comps once; returns whether it has any for `part`."""
    name = adapter_name(identity)
    adapters = _book(comps)["adapters"]
    entry = adapters.get(name) or {"path": str(path), "identity": identity, "parts": {}}
    if part not in entry["parts"]:
        state, alphas, metadata = data or read(path, identity)
        entry["parts"][part] = _load(comps[part], part, name, Path(path).name, state, alphas, metadata)
        adapters[name] = entry
    return entry["parts"][part]


def _load(model, part, name, filename, state, alphas, metadata):
    from diffusers import StableDiffusionPipeline
    keys = _part_keys(state, part)
    if not keys:
        return False
    expected = sum(1 for k in keys if A_KEY.search(k))
    loader = (StableDiffusionPipeline.load_lora_into_unet if part == "unet"
              else StableDiffusionPipeline.load_lora_into_text_encoder)
    try:
        with _quiet():
            loader(dict(state), dict(alphas) if alphas else alphas, model, adapter_name=name,
                   metadata=metadata, low_cpu_mem_usage=True)  # as load_lora_weights does
        found = _layers_with(model, name)
        if found < expected:
            raise UserError(f"only {found} of its {expected} {LABEL[part]} layers match this model")
        if found > expected:
            raise UserError(f"it has weights for {expected} {LABEL[part]} layers, but this model has {found} "
                            "such layers")
    except Exception as e:
        with _quiet():
            _drop(model, name)
        raise UserError(f"LoRA {filename} does not fit this checkpoint's {LABEL[part]} (a LoRA for another "
                        f"architecture?): {_first_line(e)}") from e
    return True


def _apply(model, part, stack):
    """Turn on exactly `stack` ((name, weight), ...) on model, or switch all adapters off."""
    if not getattr(model, "peft_config", None):
        return  # never had an adapter: already plain
    from diffusers.loaders.lora_base import (disable_lora_for_text_encoder, enable_lora_for_text_encoder,
                                             set_adapters_for_text_encoder)
    names, weights = [n for n, _ in stack], [w for _, w in stack]
    if part == "unet":
        if names:
            model.enable_lora()
            model.set_adapters(names, weights)
        else:
            model.disable_lora()
    elif names:
        enable_lora_for_text_encoder(model)
        set_adapters_for_text_encoder(names, model, weights)
    else:
        disable_lora_for_text_encoder(model)


def _drop_stale(comps, part, path, identity):
    """A changed file has a new identity: unload the adapter of its earlier version."""
    for name, entry in list(_book(comps)["adapters"].items()):
        if entry["path"] == str(path) and entry["identity"] != identity:
            _forget(comps, part, name)


def _forget(comps, part, name):
    adapters = _book(comps)["adapters"]
    entry = adapters.get(name)
    if entry is None:
        return
    if entry["parts"].pop(part, False):
        with _quiet():
            _drop(comps[part], name)
    if not entry["parts"]:
        del adapters[name]


def _book(comps):
    """Per checkpoint: adapters {name: {path, identity, parts {part: has weights}}}, active {part: stack}."""
    book = comps["lora"]
    book.setdefault("adapters", {})
    book.setdefault("active", {})
    return book


def _drop(model, name):
    """Delete adapter `name` from model; with no adapter left, unwrap the PEFT layers entirely."""
    from diffusers.utils.peft_utils import delete_adapter_layers, recurse_remove_peft_layers
    delete_adapter_layers(model, name)
    config = getattr(model, "peft_config", None)
    if config:
        config.pop(name, None)
    if not getattr(model, "peft_config", None):
        recurse_remove_peft_layers(model)
        if hasattr(model, "peft_config"):
            del model.peft_config
        if getattr(model, "_hf_peft_config_loaded", False):
            model._hf_peft_config_loaded = None


def _layers_with(model, name):
    from peft.tuners.tuners_utils import BaseTunerLayer
    return sum(1 for m in model.modules() if isinstance(m, BaseTunerLayer) and name in getattr(m, "lora_A", {}))


def _part_keys(state, part):
    return [k for k in state if k.startswith(part + ".")]


def _first_line(e):
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0]


@contextmanager
def _quiet():
    """diffusers, transformers and peft are loud while adapters are loaded and removed; our errors say it."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog
    dlevel, tlevel, bar = dlog.get_verbosity(), tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity(dlog.CRITICAL)
    tlog.set_verbosity(tlog.ERROR)
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Already found a `peft_config`")  # we do stack adapters
            warnings.filterwarnings("ignore", "Adapter .* was active which is now deleted")
            yield
    finally:
        dlog.set_verbosity(dlevel)
        tlog.set_verbosity(tlevel)
        if bar:
            tlog.enable_progress_bar()
