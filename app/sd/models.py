"""The process-wide model store: each checkpoint is loaded once and shared read-only."""
import logging
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from latentloom.app.core.errors import UserError
from latentloom.app.engine.files import PICKLE_MESSAGE, pickle_weights

from latentloom.app.paths import RESOURCES
UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


class ModelStore:
    def __init__(self, device="cpu", allow_pickle=False, max_models=2):
        self.device = device
        self.allow_pickle = allow_pickle  # legacy .ckpt files: the user's opt-in, never a workflow's
        self.max_models = max_models
        self._models = OrderedDict()  # key -> components, least recently used first
        self._sources = {}  # key -> (source, config, dtype), to reload after eviction
        self._lock = threading.RLock()
        self.loads = 0  # how many checkpoints were actually read (for tests and reports)
        self._extras = {}  # key -> {"module", "lock"}: ControlNets and VAE files, read once, kept
        # Memory budgets (bytes, None = no limit): least recently used models beyond the newest
        # are dropped when the loaded models alone exceed them (the node cache counts them too).
        self.max_bytes = self.max_vram_bytes = None
        self._bytes = {}  # key -> (cpu bytes, gpu bytes)

    def __len__(self):
        return len(self._models)

    def nbytes(self):
        """(cpu, gpu) bytes of the loaded models' weights."""
        with self._lock:
            return (sum(b[0] for k, b in self._bytes.items() if k in self._models),
                    sum(b[1] for k, b in self._bytes.items() if k in self._models))

    def get(self, key):
        with self._lock:
            if key not in self._models:
                self._models[key] = self._components(self._read(*self._sources[key]))
                self._bytes[key] = _weights_bytes(self._models[key])
                self.loads += 1
                self._evict()
            self._models.move_to_end(key)
            return self._models[key]

    def load(self, identity, source, config="", dtype=torch.float32):
        """Load (once) and return the store key. source: a folder, a file or a hub id."""
        key = f"{identity}|config={config}|{dtype}|{self.device}"
        with self._lock:
            self._sources[key] = (source, config, dtype)
            self.get(key)
        return key

    def extra(self, key, read=None):
        """A module that is no checkpoint's part (a ControlNet, a VAE file): read() once per process."""
        with self._lock:
            if key not in self._extras:
                module = read().to(self.device)
                self._extras[key] = {"module": module.eval().requires_grad_(False), "lock": threading.RLock()}
            return self._extras[key]

    def source(self, key):
        """The folder, file or hub id a loaded key was read from."""
        return self._sources[key][0]

    def _evict(self):
        while len(self._models) > self.max_models or (len(self._models) > 1 and self._over()):
            self._models.popitem(last=False)

    def _over(self):
        cpu, gpu = self.nbytes()
        return ((self.max_bytes is not None and cpu > self.max_bytes)
                or (self.max_vram_bytes is not None and gpu > self.max_vram_bytes))

    def _read(self, source, config, dtype):
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging
        logging.getLogger("diffusers").setLevel(logging.ERROR)
        diffusers_logging.disable_progress_bar()  # our own progress reports the load
        transformers_logging.disable_progress_bar()
        common = dict(dtype=dtype, safety_checker=None, requires_safety_checker=False)
        path = Path(source)
        if not self.allow_pickle:
            common["use_safetensors"] = True  # never a pickle .bin without the opt-in
        if path.is_dir():
            if not (path / "model_index.json").exists():
                raise UserError(f"{source} is a folder but not a diffusers model (no model_index.json)")
            pickles = pickle_weights(path)
            if pickles and not self.allow_pickle:
                raise UserError(PICKLE_MESSAGE.format(what=f"{path.name}/{pickles[0]}"))
            try:
                return StableDiffusionPipeline.from_pretrained(source, local_files_only=True, **common)
            except Exception as e:
                if _carries_code(e):
                    raise UserError(_CODE_REFUSED.format(name=path.name)) from e
                raise
        if path.is_file():
            return self._read_single_file(path, config, dtype)
        try:
            return StableDiffusionPipeline.from_pretrained(source, **common)  # a hub id
        except Exception as e:
            raise UserError(_hub_message(source, e)) from e

    def _read_single_file(self, path, config, dtype):
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline
        suffix = path.suffix.lower()
        tmp = None
        if suffix in (".ckpt", ".pt", ".pth", ".bin"):
            if not self.allow_pickle:
                raise UserError(PICKLE_MESSAGE.format(what=path.name))
            tmp = _pickle_to_safetensors(path)
            path = Path(tmp.name)
        elif suffix != ".safetensors":
            raise UserError(f"{path.name}: unsupported checkpoint file type (use .safetensors)")
        try:
            in_channels = _unet_in_channels(path)
            kw = dict(local_files_only=True, dtype=dtype, safety_checker=None,
                      requires_safety_checker=False)
            if config and config.lower().endswith((".yaml", ".yml")):
                kw["original_config"] = config
            else:
                kw["config"] = config or str(RESOURCES / ("sd15-inpainting" if in_channels == 9 else "sd15"))
            cls = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
            try:
                return cls.from_single_file(str(path), **kw)
            except Exception as e:
                raise UserError(f"{path.name}: could not load as a Stable Diffusion 1.x checkpoint "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                "for other architectures set the 'config' param") from e
        finally:
            if tmp is not None:
                Path(tmp.name).unlink(missing_ok=True)

    def _components(self, pipe):
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.to(self.device)
            module.eval()
            module.requires_grad_(False)
        return {
            "unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder,
            "tokenizer": pipe.tokenizer,
            # The full config (underscore keys included), as diffusers users pass it to from_config.
            "scheduler_config": dict(pipe.scheduler.config),
            "inpaint": pipe.unet.config.in_channels == 9,
            "lora": {},  # adapter name -> LoraRef loaded into these modules (app.sd.lora)
            "lock": threading.RLock(),  # held while a run activates adapters on these modules
        }


def _weights_bytes(comps):
    cpu = gpu = 0
    for name in ("unet", "vae", "text_encoder"):
        for t in list(comps[name].parameters()) + list(comps[name].buffers()):
            size = t.numel() * t.element_size()
            cpu, gpu = (cpu + size, gpu) if t.device.type == "cpu" else (cpu, gpu + size)
    return cpu, gpu


def _unet_in_channels(path):
    """Read conv_in's input channels from a safetensors header without loading tensors."""
    from latentloom.app.sd.safetensors_header import read_header
    try:
        header = read_header(path)
    except ValueError as e:
        raise UserError(f"{path.name}: {e}") from None
    entry = header.get(UNET_IN)
    if entry is None:
        raise UserError(f"{path.name}: not an original-layout Stable Diffusion 1.x checkpoint "
                        f"(no {UNET_IN}); a diffusers folder or a hub id loads as well")
    return entry["shape"][1]


_CODE_REFUSED = ("{name}: refused: the file carries code (Python objects that loading would run), not only "
                 "weights. Nothing of it was run; use a .safetensors version of this model")


def _chain(e):
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def _carries_code(e):
    import pickle
    return any(isinstance(x, pickle.UnpicklingError) or "Weights only load failed" in str(x) for x in _chain(e))


def _hub_message(repo, e):
    import os
    names = " ".join(type(x).__name__ for x in _chain(e))
    text = " ".join(str(x) for x in _chain(e))
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        why = "this machine is set offline (HF_HUB_OFFLINE), and the model is not in the local cache"
    elif any(w in names for w in ("Connect", "Timeout", "Offline", "LocalEntryNotFound")) or \
            "not fully cached" in text or "connect" in text.lower():
        why = "this machine is offline (the hub cannot be reached), and the model is not in the local cache"
    elif "RepositoryNotFound" in names or "401" in text or "404" in text:
        why = "no such model on the hub (or it is private)"
    elif "safetensors" in text and "use_safetensors" not in text and "pickle" not in text:
        why = ("it has no .safetensors weights; pickle weights load only with --allow-pickle-checkpoints")
    else:
        why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    return (f"{repo}: the download from the Hugging Face hub failed: {why}. Download it where the hub can be "
            "reached, or give a local path")


def _pickle_to_safetensors(path):
    from safetensors.torch import save_file
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if _carries_code(e):
            raise UserError(_CODE_REFUSED.format(name=path.name)) from None
        raise UserError(f"{path.name}: not a readable checkpoint ({type(e).__name__})") from None
    while isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    tensors = {k: v.contiguous() for k, v in data.items() if isinstance(v, torch.Tensor)}
    tmp = tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False)
    tmp.close()
    save_file(tensors, tmp.name)
    return tmp
