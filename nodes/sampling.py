"""Schedulers and the U-Net sampler."""
from latentloom.app.core.spec import Bool, Choice, Float, In, Int, Out
from latentloom.app.core.types import CONDITIONING, LATENT, MODEL, NOISE, SCHEDULER
from latentloom.app.sd import comfy
from latentloom.app.sd.scheduler_table import SCHEDULERS, SIGMAS, SPACINGS, overrides
from latentloom.nodes.base import node


ADVANCED = {"add_noise": True, "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": False,
            "keep_penultimate": False}


def _supported(params):
    if params["sampling"] == "comfyui":
        return [(k, f"{params[k]!r} is not a ComfyUI {what} (those are: {', '.join(names)})")
                for k, what, names in (("name", "sampler", comfy.SAMPLERS), ("sigmas", "scheduler", comfy.SCHEDULES))
                if params[k] not in names] + \
            ([("spacing", "ComfyUI sampling has no spacing choice: use default")] if params["spacing"] != "default" else [])
    advanced = [k for k, v in ADVANCED.items() if params[k] != v]
    if advanced:
        return [(advanced[0], "needs sampling 'comfyui'")]
    if params["name"] not in SCHEDULERS or params["sigmas"] not in SIGMAS:
        bad = "name" if params["name"] not in SCHEDULERS else "sigmas"
        return [(bad, f"{params[bad]!r} needs sampling 'comfyui'")]
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
      params=[Choice("name", list(SCHEDULERS) + [n for n in comfy.SAMPLERS if n not in SCHEDULERS], "euler",
                     "Scheduler family (the diffusers class of the same name), or ComfyUI's sampler_name."),
              Choice("sigmas", list(SIGMAS) + [n for n in comfy.SCHEDULES if n not in SIGMAS], "default",
                     "Noise schedule: the class default, Karras, exponential or beta (not every scheduler "
                     "supports each); with sampling comfyui, ComfyUI's scheduler."),
              Choice("spacing", list(SPACINGS), "default", "Timestep spacing; default keeps what "
                     "from_config gives for this checkpoint."),
              Choice("sampling", ["diffusers", "comfyui"], "diffusers", "diffusers: step for step as "
                     "diffusers' pipelines; comfyui: as ComfyUI's KSampler (its noise, sigmas, integer "
                     "timesteps and samplers), what imported ComfyUI graphs use."),
              Bool("add_noise", True, "comfyui sampling: add the seeded noise first (KSamplerAdvanced)."),
              Int("start_at_step", 0, "comfyui sampling: the first step of the schedule to run.", min=0, max=10000),
              Int("end_at_step", 10000, "comfyui sampling: stop before this step.", min=0, max=10000),
              Bool("return_with_leftover_noise", False, "comfyui sampling: when stopping early, keep the "
                   "remaining noise instead of denoising fully at the last step."),
              Bool("keep_penultimate", False, "comfyui sampling: keep the penultimate sigma that KSampler "
                   "drops for dpm_2, dpm_2_ancestral, uni_pc and uni_pc_bh2 (BasicScheduler's sigmas, as "
                   "SamplerCustom runs them).")],
      check=_supported)
def scheduler(ctx, model, name, sigmas, spacing, sampling, add_noise, start_at_step, end_at_step,
              return_with_leftover_noise, keep_penultimate):
    if sampling == "comfyui":
        from latentloom.app.sd.comfy.handle import describe
        return describe(name, sigmas, ctx.env.scheduler_config(model), add_noise, start_at_step, end_at_step,
                        return_with_leftover_noise, keep_penultimate)
    from latentloom.app.sd import schedulers
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
              Float("guidance_rescale", 0.0, "Rescale guidance to fix over-exposure (0 = off); with "
                    "sampling comfyui, ComfyUI's RescaleCFG multiplier.",
                    min=0.0, max=1.0, step=0.05)])
def sampler(ctx, model, positive, negative, latent, noise, scheduler, steps, cfg, denoise, guidance_rescale):
    from latentloom.app.sd import guidance, sampling, text
    from latentloom.app.sd.handles import Latent

    def pad_chunk(cond):
        with ctx.env.clip(cond.clip) as te:
            return text.empty_chunk(te, cond.clip_skip)

    def progress(step, total, preview):
        ctx.progress(step, total, preview if ctx.wants_preview else None)

    comfyui = getattr(scheduler, "comfyui", False)
    context = dict(latent=latent, cfg=cfg, log=ctx.log, sampling="comfyui" if comfyui else "diffusers",
                   schedule=scheduler)
    with ctx.env.unet(model) as unet, guidance.bound(ctx.env, guidance.specs_of(positive, negative),
                                                     dict(context, unet_config=unet.config)) as guides:
        if comfyui:
            from latentloom.app.sd.comfy import sample
            samples = sample.sample(unet, positive, negative, latent, noise.seed, scheduler, steps, cfg, denoise,
                                    progress, guides, guidance_rescale)
            return Latent(samples, mask=latent.mask, masked_image_latents=latent.masked_image_latents,
                          inpaint_mask=latent.inpaint_mask)
        samples = sampling.sample(unet, positive, negative, latent, noise.seed, scheduler, steps,
                                  cfg, denoise, guidance_rescale, pad_chunk, progress, guides)
    return Latent(samples)
