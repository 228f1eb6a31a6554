"""latentloom train-lora: train a LoRA on a folder of captioned images (SD 1.x base)."""
import argparse
import signal
import sys
import threading
from pathlib import Path

from latentloom.app.commands.common import EXIT_FAILED, EXIT_INVALID, EXIT_OK

NAME = "train-lora"
FLAGS = {"text_encoder": "--text-encoder", "gradient_checkpointing": "--gradient-checkpointing"}


def add_parser(sub, common):
    # Not built on `common`: here --out names the LoRA file, not the output folder.
    p = sub.add_parser(NAME, help="train a LoRA from a folder of images (captions: NAME.txt or metadata.jsonl)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--base", required=True, metavar="CKPT",
                   help="SD 1.x checkpoint: a .safetensors file, a diffusers folder or a hub id "
                        "(relative paths also look in the models folders' checkpoints/)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder of images with captions")
    p.add_argument("--out", required=True, metavar="NAME.safetensors", help="the LoRA file to write")
    p.add_argument("--rank", type=int, default=4, help="LoRA rank")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    p.add_argument("--batch", type=int, default=1, help="images per step")
    p.add_argument("--resolution", type=int, default=512, help="square training size (multiple of 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--caption", default="", metavar="TEXT", help="caption for images that have none")
    p.add_argument("--text-encoder", action="store_true", help="train LoRA layers on the text encoder too")
    p.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save NAME-stepNNNN.safetensors every N steps (0: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from the last save (NAME.trainstate)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 mixed precision on a GPU, fp32 on the CPU")
    p.add_argument("--gradient-checkpointing", action="store_true", help="less memory, slower steps")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--models", action="append", metavar="DIR", help="models folder (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def flag(name):
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def run(args):
    from latentloom.app.core.errors import UserError
    try:
        trainer, base, out, data = _setup(args)
    except UserError as e:
        return _fail(e, EXIT_INVALID, args.debug)
    try:
        return _train(trainer, base, out, data, args)
    except UserError as e:
        return _fail(e, EXIT_FAILED, args.debug)


def _fail(e, code, debug):
    print(f"error: {e}", file=sys.stderr)
    if debug:
        import traceback
        traceback.print_exception(e)
    return code


def _setup(args):
    """Check the flags, read the data, load the base and build the trainer (UserError naming the flag)."""
    from latentloom.app.core.errors import UserError
    from latentloom.app.sd.train import data as datasets, loop, saves
    config = loop.Config(rank=args.rank, alpha=args.rank if args.alpha is None else args.alpha, steps=args.steps,
                         lr=args.lr, batch=args.batch, resolution=args.resolution, seed=args.seed,
                         text_encoder=args.text_encoder, precision=args.precision,
                         gradient_checkpointing=args.gradient_checkpointing)
    loop.check_config(config, flag)
    if args.save_every < 0:
        raise UserError(f"--save-every: must be 0 or more, got {args.save_every}")
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".safetensors":
        raise UserError(f"--out {args.out!r}: the LoRA file name must end in .safetensors")
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out!r}: the folder {str(out.parent)!r} does not exist")
    dataset = datasets.load(args.data, config.resolution, args.caption, where="--data")
    for item in dataset.skipped:
        print(f"warning: --data: skipped unreadable image {item}", file=sys.stderr)
    env, handles, source = _base(args, config)
    trainer = loop.Trainer(env, *handles, dataset, config, where="--base")
    data = saves.data_hash(dataset)
    if args.resume:
        saved = saves.load_state(saves.state_path(out))
        if saved is None:
            raise UserError(f"--resume: no saved state {saves.state_path(out).name} beside --out")
        trainer.load_state(*saved, data_hash=data)
    from latentloom.app.sd.train import kohya
    return trainer, (Path(str(source)).name, kohya.base_hashes(source)), out, data


def _base(args, config):
    from latentloom.app.core.errors import UserError
    from latentloom.app.engine.files import FileProblem, Files, fingerprint
    from latentloom.app.session import models_dirs_from
    from latentloom.app.sd.runtime import Runtime
    try:
        resolved = Files(models_dirs_from(args.models)).resolve(args.base, "checkpoints", hub_ok=True)
    except FileProblem as e:
        raise UserError(f"--base: {e}") from None
    try:
        env = Runtime(args.device)
    except ValueError as e:
        raise UserError(f"--device: {e}") from None
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if env.device.startswith("cuda") else "fp32"
    if precision != "fp32" and not env.device.startswith("cuda"):
        raise UserError(f"--precision {precision}: mixed precision needs a GPU (this run is on {env.device})")
    source = resolved.path or resolved.hub_id
    try:
        handles = env.load_checkpoint(fingerprint(resolved), source, "", precision)
    except UserError as e:
        raise UserError(f"--base: {e}") from None
    model, clip, vae = handles
    return env, (model, clip, vae), source


def _train(trainer, base, out, data, args):
    from tqdm import tqdm
    from latentloom.app.sd.train import log, saves
    stop = []

    def on_sigint(signum, frame):
        if stop:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now (files are written whole or not at all)
        stop.append(True)
        print("\ninterrupted: saving after this step (Ctrl-C again to leave without saving)", file=sys.stderr)

    main_thread = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    total = trainer.config.steps
    bar = tqdm(total=total, initial=trainer.done, desc="train-lora", unit="step", disable=args.quiet, file=sys.stderr)
    try:
        while trainer.done < total and not stop:
            trainer.step()
            bar.update(1)
            bar.set_postfix(loss=f"{log.running(trainer.losses):.4f}")
            if args.save_every and trainer.done % args.save_every == 0 and trainer.done < total:
                bar.write(f"saved {saves.save_all(trainer, out, *base, data, intermediate=True)}", file=sys.stderr)
        bar.close()
        if stop and trainer.done < total:
            path = saves.save_all(trainer, out, *base, data, intermediate=True)
            print(f"interrupted at step {trainer.done}/{total}: saved {path}; continue with --resume",
                  file=sys.stderr)
            return EXIT_FAILED
        path = saves.save_all(trainer, out, *base, data)
    finally:
        bar.close()
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if not args.quiet:
        print(f"wrote {path} (rank {trainer.config.rank}, {trainer.done} steps, final running loss "
              f"{log.running(trainer.losses):.4f}); loss curve {saves.state_path(out).with_suffix('.loss.png')}",
              file=sys.stderr)
    return EXIT_OK
