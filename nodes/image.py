"""Decoding, picking and saving images."""
from latentloom.app.core.outputs import check_prefix
from latentloom.app.core.spec import Bool, Choice, In, Int, Out, String
from latentloom.app.core.types import IMAGE, LATENT, VAE
from latentloom.nodes.base import node


@node("VAEDecode", "latent",
      "Decode latents into images with the VAE.",
      inputs=[In("vae", VAE), In("latent", LATENT)],
      outputs=[Out("image", IMAGE)],
      params=[Bool("tiled", False, "Work in overlapping tiles (diffusers' enable_tiling) to bound memory: "
                   "SD 1.5 VAEs tile above 512 px (latents above 64) on a side, in 512 px tiles.")])
def vae_decode(ctx, vae, latent, tiled=False):
    from latentloom.app.sd import images
    with ctx.env.vae(vae) as model, images.tiling(model, tiled):
        return images.decode(model, latent.samples)


@node("ImageFromBatch", "image",
      "Pick images out of a batch: `length` images starting at `index` (clamped to the batch).",
      inputs=[In("image", IMAGE)],
      outputs=[Out("image", IMAGE)],
      params=[Int("index", 0, "First image to take (0 = the first).", min=0, max=4095),
              Int("length", 1, "How many images to take.", min=1, max=4096)])
def image_from_batch(ctx, image, index, length):
    start = min(index, image.shape[0] - 1)
    return image[start:start + length]


def _prefix_ok(params):
    problem = check_prefix(params["filename_prefix"])
    return [("filename_prefix", problem)] if problem else []


def _pick_document(doc, save_id, index):
    """The workflow that reproduces image `index` of a batch on its own: the same batch is
    computed (noise is drawn for the whole batch) and ImageFromBatch keeps that one image."""
    import copy
    doc = copy.deepcopy(doc)
    nodes = doc["nodes"]
    link = nodes[save_id]["inputs"]["image"]
    pick = f"{save_id}_batch_pick"
    while pick in nodes:
        pick += "_"
    nodes[pick] = {"type": "ImageFromBatch", "params": {"index": index, "length": 1},
                   "inputs": {"image": list(link)}}
    nodes[save_id]["inputs"]["image"] = [pick, "image"]
    return doc


@node("SaveImage", "image",
      "Write PNGs into the output folder as <filename_prefix>_<counter>.png, each carrying the workflow "
      "that reproduces exactly that image (and an A1111-style 'parameters' text). Never overwrites a "
      "file, and never leaves a half-written one.",
      inputs=[In("image", IMAGE)],
      params=[String("filename_prefix", "latentloom", "File name start; may include sub-folders "
                     "inside the output folder."),
              Choice("to_8bit", ["round", "truncate"], "round", "round: as diffusers; truncate: as ComfyUI.")],
      output_node=True, check=_prefix_ok)
def save_image(ctx, image, filename_prefix, to_8bit):
    from latentloom.app.core import a1111
    from latentloom.app.engine import outputs, png
    from latentloom.app.sd import images
    if to_8bit == "truncate":
        from latentloom.app.sd.comfy.images import to_pil_truncated
        pils = to_pil_truncated(image)
    else:
        pils = images.to_pil(image)
    for i, pil in enumerate(pils):
        doc = ctx.workflow if len(pils) == 1 else _pick_document(ctx.workflow, ctx.node_id, i)
        parameters = a1111.parameters(doc, ctx.node_id)
        if len(pils) > 1 and parameters:
            parameters += f", Batch size: {len(pils)}, Batch pos: {i}"
        path = outputs.write_new(ctx.output_dir, filename_prefix, ".png",
                                 lambda tmp, pil=pil, doc=doc: png.save(pil, tmp, doc, parameters))
        ctx.wrote(path)
    return {}


@node("PreviewImage", "image",
      "Show images in the editor's image panel without writing anything. An output node: a graph "
      "ending in it runs, and it runs on every run.",
      inputs=[In("image", IMAGE)],
      output_node=True)
def preview_image(ctx, image):
    from latentloom.app.sd import images
    ctx.show(images.to_pil(image))
    return {}
