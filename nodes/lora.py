"""LoRA loading: adds a LoRA to the model and clip handles' stacks (the shared modules stay as they are)."""
from latentloom.app.core.spec import File, Float, In, Out
from latentloom.app.core.types import CLIP, LORA, MODEL
from latentloom.nodes.base import node


@node("LoadLoRA", "loaders",
      "Apply a LoRA (diffusers/PEFT or kohya/A1111 .safetensors) to the U-Net and the text encoder. "
      "Chains of LoadLoRA stack; other branches of the graph keep the plain model.",
      inputs=[In("model", MODEL), In("clip", CLIP),
              In("lora", LORA, "A LoRA file from TrainLoRA; when linked it replaces `path`.", overrides="path")],
      outputs=[Out("model", MODEL, "The U-Net with this LoRA added to its stack."),
               Out("clip", CLIP, "The text encoder with this LoRA added to its stack.")],
      params=[File("path", "loras", "my-lora.safetensors", extensions=(".safetensors",),
                   help="LoRA file, relative to the models folders (unused while `lora` is linked)."),
              Float("strength_model", 1.0, "Strength on the U-Net (0 = off, negative inverts).",
                    min=-4.0, max=4.0, step=0.05),
              Float("strength_clip", 1.0, "Strength on the text encoder.", min=-4.0, max=4.0, step=0.05)])
def load_lora(ctx, model, clip, path, strength_model, strength_clip, lora=None):
    if lora is not None:
        file, identity = lora.path, lora.identity
    else:
        file, identity = ctx.file("path"), ctx.fingerprint("path")
    model, clip = ctx.env.add_lora(model, clip, file, identity, strength_model, strength_clip)
    return {"model": model, "clip": clip}
