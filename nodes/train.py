"""Training a LoRA inside the graph."""
from latentloom.app.core.spec import Bool, File, Float, In, Int, Out, Seed, String
from latentloom.app.core.types import CLIP, IMAGE, LORA, MODEL
from latentloom.nodes.base import node


def _check(params):
    if params["resolution"] % 8:
        return [("resolution", f"must be a multiple of 8, got {params['resolution']}")]
    return []


@node("TrainLoRA", "training",
      "Train a LoRA on a folder of images (captions in same-named .txt files or metadata.jsonl), after "
      "diffusers' train_text_to_image_lora recipe, on private copies of the model. Trains once: the "
      "result is cached on the folder's contents and every param, and kept in the output folder's "
      "loras/ (a longer run continues from a shorter one's saved state). Shows its loss curve while it trains.",
      inputs=[In("model", MODEL, "An SD 1.x U-Net without LoRAs."), In("clip", CLIP, "Its text encoder.")],
      outputs=[Out("lora", LORA, "The LoRA file (kohya layout), for LoadLoRA's `lora` input."),
               Out("loss", IMAGE, "The loss curve.")],
      params=[File("data", "training", "my-subject", fingerprint="content",
                   help="Folder of training images, relative to the models folders' training/ folder, "
                        "the workflow, or a full path. Editing any file in it re-trains."),
              Int("rank", 4, "LoRA rank.", min=1, max=256),
              Float("alpha", 0.0, "LoRA alpha; 0 = the rank (scale 1).", min=0.0, max=1024.0, step=1.0),
              Int("steps", 500, "Optimizer steps.", min=1, max=100000),
              Float("lr", 1e-4, "AdamW learning rate.", min=1e-8, max=1.0, step=1e-5),
              Seed("seed", 0, "Seed of every random draw (LoRA init, order, noise, timesteps)."),
              Bool("text_encoder", False, "Train LoRA layers on the text encoder too."),
              Int("resolution", 512, "Square training size: images are centre-cropped and resized.",
                  min=64, max=2048, step=8),
              Int("batch", 1, "Images per step.", min=1, max=64),
              String("caption", "", "Caption for images that have none."),
              String("name", "lora", "File name start of the LoRA in the output folder's loras/.")],
      check=_check)
def train_lora(ctx, model, clip, data, rank, alpha, steps, lr, seed, text_encoder, resolution, batch, caption, name):
    from latentloom.app.sd.train import graph, loop
    config = loop.Config(rank=rank, alpha=alpha, steps=steps, lr=lr, batch=batch, resolution=resolution, seed=seed,
                         text_encoder=text_encoder)
    return graph.train(ctx, model, clip, config, caption, name)
