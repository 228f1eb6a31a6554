"""Decoding and saving images."""
from app.core.outputs import check_prefix
from app.core.spec import In, Out, String
from app.core.types import IMAGE, LATENT, VAE
from nodes.base import node


@node("VAEDecode", "latent",
      "Decode latents into images with the VAE.",
      inputs=[In("vae", VAE), In("latent", LATENT)],
      outputs=[Out("image", IMAGE)])
def vae_decode(ctx, vae, latent):
    from app.sd import images
    return images.decode(ctx.env.store.get(vae.checkpoint)["vae"], latent.samples)


def _prefix_ok(params):
    problem = check_prefix(params["filename_prefix"])
    return [("filename_prefix", problem)] if problem else []


@node("SaveImage", "image",
      "Write PNGs into the output folder as <filename_prefix>_<counter>.png, each carrying the workflow "
      "that made it (and an A1111-style 'parameters' text). Never overwrites a file.",
      inputs=[In("image", IMAGE)],
      params=[String("filename_prefix", "latentloom", "File name start; may include sub-folders "
                     "inside the output folder.")],
      output_node=True, check=_prefix_ok)
def save_image(ctx, image, filename_prefix):
    from app.core import a1111, outputs, png
    from app.sd import images
    parameters = a1111.parameters(ctx.workflow, ctx.node_id)
    for pil in images.to_pil(image):
        path = outputs.reserve(ctx.output_dir, filename_prefix)
        try:
            png.save(pil, path, ctx.workflow, parameters)
        except BaseException:
            path.unlink(missing_ok=True)  # leave no empty file behind
            raise
        ctx.wrote(path)
    return {}
