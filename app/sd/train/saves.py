"""Writing a training's files: the LoRA (kohya layout), its loss log and curve, its resumable state.

Every file is written crash-safely (temp name, fsync, rename): an interruption leaves the earlier
file or the new one, never half of one. The state sits in <stem>.trainstate (safetensors format
under another suffix, so LoRA folders do not list it)."""
import hashlib
import json
from pathlib import Path

from latentloom.app.engine.outputs import write_file
from latentloom.app.sd.train import kohya, log


def data_hash(dataset):
    """What the training saw: the prepared pixels and captions (not file names or times)."""
    h = hashlib.sha256(dataset.pixels.numpy().tobytes())
    h.update(json.dumps(dataset.captions).encode())
    return h.hexdigest()


def step_path(out, step):
    """NAME.safetensors -> NAME-stepNNNN.safetensors."""
    out = Path(out)
    return out.with_name(f"{out.stem}-step{step:04d}{out.suffix}")


def state_path(out):
    out = Path(out)
    return out.with_name(out.stem + ".trainstate")


def save_lora(trainer, path, base_name, base_hashes):
    state = kohya.kohya_state(trainer.lora_parts(), trainer.config.alpha)
    meta = kohya.metadata(trainer.config, trainer.data, trainer.done, base_name, base_hashes)
    kohya.save(path, state, meta)
    return Path(path)


def save_log(trainer, out):
    """<stem>.loss.csv/.json/.png beside the LoRA `out`; returns the PNG's path."""
    out = Path(out)
    return log.write(out.with_suffix(""), trainer.losses, trainer.config.steps)


def save_state(trainer, path, data):
    tensors, meta = trainer.state(data)
    blob = kohya.serialize(tensors, meta)
    write_file(path, lambda tmp: Path(tmp).write_bytes(blob))


def load_state(path):
    """(tensors, metadata) of a .trainstate file; None when there is none."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def save_all(trainer, out, base_name, base_hashes, data, intermediate=False):
    """The LoRA (at `out`, or NAME-stepNNNN for an intermediate save), the state and the log."""
    path = step_path(out, trainer.done) if intermediate else Path(out)
    save_lora(trainer, path, base_name, base_hashes)
    save_state(trainer, state_path(out), data)
    save_log(trainer, out)
    return path
