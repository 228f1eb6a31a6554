"""TrainLoRA's work: train (or find an earlier result), write into the output folder's loras/.

The LoRA is <name>_<key>.safetensors, key being a hash of everything the result depends on
(data contents, params, base): a later process finds it instead of training again. The
resumable state is kept per key without the step count, so 300 steps continue from a finished
100-step run, and a cancelled training continues where it stopped. Resumed runs equal
uninterrupted ones, so neither changes the result."""
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

from latentloom.app.core.errors import UserError
from latentloom.app.engine.cancel import Cancelled
from latentloom.app.engine.outputs import safe_stem, target_dir
from latentloom.app.sd.train import data as datasets, kohya, log, loop, saves

VERSION = 1
LOG_EVERY = 10  # loss lines per training
PREVIEWS = 100  # live loss curves per training, at most


def train(ctx, model, clip, config, caption, name):
    if model.loras or clip.loras:
        port = "model" if model.loras else "clip"
        raise UserError(f"input {port!r} already carries a LoRA: train on the checkpoint's own model and clip")
    loop.check_config(config, lambda p: f"param {p!r}")
    stem = safe_stem(name, "lora")
    folder = target_dir(ctx.output_dir, "loras/lora")
    out = folder / f"{stem}_{_key(ctx, model, clip, config, caption)[:12]}.safetensors"
    losses = log.read(out.with_suffix(""))
    if out.is_file() and losses is not None:
        ctx.log(f"found {out.name} (same data and params): not training again")
        return _result(out, losses, config.steps)
    dataset = datasets.load(ctx.file("data"), config.resolution, caption, where="param 'data'")
    if dataset.skipped:
        ctx.log(f"skipped {len(dataset.skipped)} unreadable image(s): {'; '.join(dataset.skipped)}")
    from latentloom.app.sd.handles import VaeHandle
    trainer = loop.Trainer(ctx.env, model, clip, VaeHandle(model.checkpoint), dataset, config, where="input 'model'")
    data = saves.data_hash(dataset)
    state = folder / f".{stem}_{_key(ctx, model, clip, replace(config, steps=0), caption)[:12]}.trainstate"
    _resume(ctx, trainer, state, data)
    _loop(ctx, trainer, state, data)
    source = ctx.env.checkpoint_source(model)
    saves.save_lora(trainer, out, Path(str(source)).name, kohya.base_hashes(source))
    log.write(out.with_suffix(""), trainer.losses, config.steps)
    saves.save_state(trainer, state, data)
    ctx.wrote(out)
    ctx.log(f"trained {out.name}: {trainer.done} steps, running loss {log.running(trainer.losses):.4f}")
    return _result(out, trainer.losses, config.steps)


def _key(ctx, model, clip, config, caption):
    doc = {"version": VERSION, "config": asdict(config), "caption": caption, "data": ctx.fingerprint("data"),
           "model": model.cache_token, "clip": clip.cache_token}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _resume(ctx, trainer, state, data):
    saved = saves.load_state(state)
    if saved is None or int(saved[1].get("step", 0)) > trainer.config.steps:
        return
    try:
        trainer.load_state(*saved, data_hash=data)
    except (UserError, KeyError, ValueError, RuntimeError):
        return  # an unusable state: train from the start
    ctx.log(f"continuing from step {trainer.done} of an earlier run with the same data and params")


def _loop(ctx, trainer, state, data):
    total = trainer.config.steps
    every, draw_every = max(1, total // LOG_EVERY), max(1, total // PREVIEWS)
    try:
        while trainer.done < total:
            trainer.step()
            draw = ctx.wants_preview and (trainer.done % draw_every == 0 or trainer.done == total)
            ctx.progress(trainer.done, total, (lambda: log.curve(trainer.losses, total)) if draw else None)
            if trainer.done % every == 0 or trainer.done == total:
                ctx.log(f"step {trainer.done}/{total}: loss {trainer.losses[-1]:.4f}, "
                        f"running {log.running(trainer.losses):.4f}")
    except Cancelled:
        saves.save_state(trainer, state, data)  # at a step boundary: a re-run continues from here
        raise


def _result(out, losses, total):
    from latentloom.app.sd import images
    from latentloom.app.sd.handles import LoraFile
    identity = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    return {"lora": LoraFile(str(out), identity), "loss": images.from_pil([log.curve(losses, total)])}
