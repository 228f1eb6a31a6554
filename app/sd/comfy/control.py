"""ControlNet in ComfyUI sampling, as ComfyUI's ControlNet.get_control applies it.

- The control image is resized to the latent's pixel size with nearest-exact after a centre crop
  to its aspect (common_upscale), in 0..1.
- start/end are fractions of the model's sigma range (percent_to_sigma), not of the steps: the
  control acts while end_sigma <= sigma <= start_sigma, at every model call (Heun's too).
- Cond and uncond both get the control, each with its own prompt; strength scales the residuals.
- Shuffle-type ControlNets average their residuals over the picture (no guess mode).
"""
from contextlib import contextmanager

import torch

from latentloom.app.sd import controlnet, guidance, upscale
from latentloom.app.sd.comfy.schedules import ModelSampling


def hint_image(image, height, width):
    """IMAGE [b, 3, H, W] -> the hint at (height, width): centre crop to the aspect, nearest-exact."""
    image = upscale.center_crop(image.float(), width, height)
    return torch.nn.functional.interpolate(image, size=(height, width), mode="nearest-exact")


def batched(hint, size, halves):
    """ComfyUI's broadcast_image_to: one hint serves all; else each half cycles through its hints."""
    if hint.shape[0] == 1:
        return hint
    per_half = size // halves
    hint = hint[:per_half]
    if per_half > hint.shape[0]:
        hint = torch.cat([hint] * (per_half // hint.shape[0]) + [hint[:per_half % hint.shape[0]]])
    return hint if hint.shape[0] == size else torch.cat([hint] * halves)


class ComfyControlGuide(guidance.Guide):
    def __init__(self, net, spec, hint, mask, sigmas, batch):
        self.net, self.spec, self.hint, self.mask = net, spec, hint, mask
        self.start_sigma, self.end_sigma = sigmas
        self.batch = batch

    def unet_kwargs(self, at, t, model_in, embeds):
        if at.sigma > self.start_sigma or at.sigma < self.end_sigma:
            return {}
        dtype = self.net.dtype
        hint = batched(self.hint, model_in.shape[0], max(1, model_in.shape[0] // self.batch))  # 1: broadcasts
        down, mid = self.net(model_in.to(dtype), t, encoder_hidden_states=embeds.to(dtype),
                             controlnet_cond=hint.to(dtype), conditioning_scale=self.spec.strength,
                             guess_mode=False, return_dict=False)
        return controlnet.residual_kwargs(down, mid, self.mask, model_in.dtype)


@contextmanager
def make(env, spec, context):
    """Bind a ControlSpec to a ComfyUI-mode sampler run (context: latent, schedule, unet_config)."""
    batch, _, h, w = context["latent"].samples.shape
    ms = ModelSampling(context["schedule"].config)
    sigmas = (ms.percent_to_sigma(spec.start), ms.percent_to_sigma(spec.end))
    with env.controlnet(spec.controlnet) as net:
        controlnet.check_fits(net, context.get("unet_config"))
        hint = hint_image(spec.image, h * 8, w * 8).to(net.device)
        yield ComfyControlGuide(net, spec, hint, controlnet.latent_mask(spec.mask, h, w, batch, net.device),
                                sigmas, batch)
