"""Schedulers and the U-Net sampler."""
from app.core.spec import Choice, Float, In, Int, Out
from app.core.types import CONDITIONING, LATENT, MODEL, NOISE, SCHEDULER
from app.sd.scheduler_table import SCHEDULERS, SIGMAS, SPACINGS, overrides
from nodes.base import node


def _supported(params):
    try:
        overrides(params["name"], params["sigmas"], params["spacing"])
    except ValueError as e:
        return [("sigmas", str(e))]
    return []


@node("Scheduler", "sampling",
      "Choose the diffusers scheduler (and its sigmas and timestep spacing). Passes a description; "
      "each sampler builds its own fresh instance from the checkpoint's scheduler config.",
      inputs=[In("model", MODEL)],
      outputs=[Out("scheduler", SCHEDULER)],
      params=[Choice("name", list(SCHEDULERS), "euler", "Scheduler family (the diffusers class of the "
                     "same name)."),
              Choice("sigmas", list(SIGMAS), "default", "Noise schedule: the class default, Karras, "
                     "exponential or beta (not every scheduler supports each)."),
              Choice("spacing", list(SPACINGS), "default", "Timestep spacing; default keeps what "
                     "from_config gives for this checkpoint.")],
      check=_supported)
def scheduler(ctx, model, name, sigmas, spacing):
    from app.sd import schedulers
    return schedulers.describe(name, ctx.env.scheduler_config(model), sigmas, spacing)


@node("Sampler", "sampling",
      "Denoise a latent with the U-Net, step for step as diffusers' pipelines do. An empty latent "
      "gives text-to-image; a latent from an image with denoise < 1 gives image-to-image; a latent "
      "with a mask inpaints.",
      inputs=[In("model", MODEL), In("positive", CONDITIONING), In("negative", CONDITIONING),
              In("latent", LATENT), In("noise", NOISE), In("scheduler", SCHEDULER)],
      outputs=[Out("latent", LATENT)],
      params=[Int("steps", 25, "Inference steps.", min=1, max=1000),
              Float("cfg", 7.5, "Classifier-free guidance scale; 1 or less turns guidance off.",
                    min=0.0, max=100.0, step=0.5),
              Float("denoise", 1.0, "How much of the input latent to re-noise (img2img strength).",
                    min=0.0, max=1.0, step=0.05),
              Float("guidance_rescale", 0.0, "Rescale guidance to fix over-exposure (0 = off).",
                    min=0.0, max=1.0, step=0.05)])
def sampler(ctx, model, positive, negative, latent, noise, scheduler, steps, cfg, denoise, guidance_rescale):
    from app.sd import guidance, sampling, text
    from app.sd.handles import Latent

    def pad_chunk(cond):
        with ctx.env.clip(cond.clip) as te:
            return text.empty_chunk(te, cond.clip_skip)

    def progress(step, total, preview):
        ctx.progress(step, total, preview if ctx.wants_preview else None)

    specs = positive.guides + tuple(g for g in negative.guides if g not in positive.guides)
    with ctx.env.unet(model) as unet, guidance.bound(ctx.env, specs, dict(
            latent=latent, cfg=cfg, log=ctx.log, unet_config=unet.config)) as guides:
        samples = sampling.sample(unet, positive, negative, latent, noise.seed, scheduler, steps,
                                  cfg, denoise, guidance_rescale, pad_chunk, progress, guides)
    return Latent(samples)
