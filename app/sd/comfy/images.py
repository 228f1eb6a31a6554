"""ComfyUI's image rules: centre-crop to multiples of 8 before encoding, inpaint greying and
mask growing, and 8-bit conversion that truncates."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def crop_offsets(height, width, factor=8):
    """(top, left, height, width) of the centred crop to multiples of factor."""
    h, w = height // factor * factor, width // factor * factor
    return (height % factor) // 2, (width % factor) // 2, h, w


def crop(image, factor=8):
    """IMAGE [b, c, H, W] -> centre-cropped to multiples of factor."""
    top, left, h, w = crop_offsets(*image.shape[-2:], factor)
    return image[..., top:top + h, left:left + w]


def cropped_with_mask(image, mask, factor=8):
    """(IMAGE, mask resized to it bilinearly), both centre-cropped to multiples of factor."""
    H, W = image.shape[-2:]
    mask = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).float(), size=(H, W), mode="bilinear")
    return crop(image.clone(), factor), crop(mask, factor)


def grey(pixels, mask):
    """Pixels set to 0.5 where the rounded mask is 1."""
    return (pixels - 0.5) * (1.0 - mask.round()) + 0.5


def inpaint_pixels(image, mask, grow_by, factor=8):
    """VAEEncodeForInpaint: (greyed, cropped IMAGE; the grown, rounded noise mask at pixel size)."""
    pixels, mask = cropped_with_mask(image, mask, factor)
    h, w = pixels.shape[-2:]
    grown = mask
    if grow_by:
        kernel = torch.ones((1, 1, grow_by, grow_by))
        grown = torch.clamp(F.conv2d(mask.round(), kernel, padding=math.ceil((grow_by - 1) / 2)), 0, 1)
    return grey(pixels, mask), grown[:, :, :h, :w].round()


def latent_mask(mask, height, width):
    """A noise mask resized to the latent bilinearly, without rounding."""
    return F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).float(), size=(height, width), mode="bilinear")


def to_pil_truncated(image):
    """IMAGE -> PIL images, 255 * x clipped and truncated to 8 bits."""
    arrays = np.clip(255.0 * image.permute(0, 2, 3, 1).cpu().float().numpy(), 0, 255).astype(np.uint8)
    return [Image.fromarray(a) for a in arrays]
