"""Loading checkpoints."""
from latentloom.app.core.spec import Choice, File, Out
from latentloom.app.core.types import CLIP, MODEL, VAE
from latentloom.nodes.base import node


@node("LoadCheckpoint", "loaders",
      "Load a Stable Diffusion 1.x checkpoint: a diffusers folder, a single-file .safetensors in the "
      "original layout, or a Hugging Face repo id. Loaded once per process and shared.",
      outputs=[Out("model", MODEL, "The U-Net."), Out("clip", CLIP, "The text encoder and tokenizer."),
               Out("vae", VAE, "The autoencoder.")],
      params=[
          File("path", "checkpoints", "v1-5-pruned-emaonly.safetensors", hub=True,
               extensions=(".safetensors", ".ckpt"),
               help="Checkpoint file or folder, relative to the models folders, or a hub repo id."),
          File("config", "configs", "", optional=True, extensions=(".yaml", ".json"),
               help="Optional diffusers config folder or original .yaml for single files "
                    "that are not SD 1.x (SD 1.x and SD 1.5 inpainting are built in)."),
          Choice("dtype", ["auto", "fp32", "fp16", "bf16"], help="Weights precision; auto is fp16 on "
                 "a GPU, bf16 on a CPU that computes it natively (AMX-BF16, AVX512-BF16) and fp32 on "
                 "other CPUs. fp32 is the fidelity mode (diffusers' defaults, pixel for pixel)."),
      ])
def load_checkpoint(ctx, path, config, dtype):
    config_path = ctx.file("config") if config else ""
    model, clip, vae = ctx.env.load_checkpoint(ctx.fingerprint("path"), ctx.file("path"), config_path, dtype,
                                               log=ctx.log)
    return {"model": model, "clip": clip, "vae": vae}


@node("LoadVAE", "loaders",
      "Load a VAE of its own (such as vae-ft-mse-840000-ema-pruned.safetensors): a diffusers folder or "
      "a single .safetensors in the original layout. Wire it wherever a checkpoint's vae goes. Loaded "
      "once per process.",
      outputs=[Out("vae", VAE, "The autoencoder.")],
      params=[File("path", "vae", "vae-ft-mse-840000-ema-pruned.safetensors", extensions=(".safetensors",),
                   help="VAE file or folder, relative to models/vae/."),
              Choice("dtype", ["auto", "fp32", "fp16", "bf16"], help="Weights precision; auto is fp16 on a "
                     "GPU and fp32 on the CPU.")])
def load_vae(ctx, path, dtype):
    return ctx.env.load_vae(ctx.fingerprint("path"), ctx.file("path"), dtype)
