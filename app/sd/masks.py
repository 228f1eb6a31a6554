"""Image files, masks and image ops on CPU tensors.

IMAGE: float32 [B, 3, H, W] in 0..1. MASK: float32 [B, 1, H, W] in 0..1, 1 = repaint.
"""

import numpy as np
import torch
import torch.nn.functional as F

from latentloom.app.core.errors import UserError

MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's "L" conversion
_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


# ---- files

def open_image(path):
    """A PIL image, EXIF orientation applied, fully loaded. UserError names the file on failure."""
    from PIL import Image, ImageOps
    name = str(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
                raise UserError(f"image {name} is too large ({w}x{h}); the limit is {MAX_SIDE} pixels a side "
                                f"and {MAX_PIXELS // 1_000_000} megapixels")
            im.load()
            return ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as e:
        raise UserError(f"image {name} is refused as too large: {e}") from e
    except FileNotFoundError as e:
        raise UserError(f"image file not found: {name}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # PIL's ways of saying "unreadable"
        raise UserError(f"cannot read image {name}: {e}") from e


def planes(im):
    """PIL image -> (rgb [H, W, 3], alpha [H, W] or None, luminance [H, W]) float32 in 0..1."""
    if im.mode in _INT_MODES:  # 16-bit or float greyscale
        gray = np.asarray(im, dtype=np.float32)
        gray = np.clip(gray / (1.0 if im.mode == "F" else 65535.0), 0, 1)
        return np.repeat(gray[..., None], 3, axis=2), None, gray
    alpha = None
    if im.has_transparency_data:
        im = im.convert("RGBA")
        alpha = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
    rgb = im.convert("RGB")
    return (np.asarray(rgb, dtype=np.float32) / 255.0, alpha,
            np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0)


def load_image(path):
    """File -> (IMAGE [1, 3, H, W], MASK [1, 1, H, W] = 1 - alpha, zeros without alpha)."""
    rgb, alpha, _ = planes(open_image(path))
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
    mask = torch.zeros_like(image[:, :1]) if alpha is None else torch.from_numpy(1.0 - alpha)[None, None]
    return image, mask


def load_mask(path, channel):
    """File -> (MASK [1, 1, H, W], has_alpha). channel: red|green|blue|alpha|luminance.

    alpha gives 1 - alpha (transparent = repaint, as LoadImage); luminance is PIL's "L" (as diffusers).
    """
    rgb, alpha, luma = planes(open_image(path))
    if channel == "alpha":
        plane = np.zeros_like(luma) if alpha is None else 1.0 - alpha
    elif channel == "luminance":
        plane = luma
    else:
        plane = rgb[..., ("red", "green", "blue").index(channel)]
    return torch.from_numpy(np.ascontiguousarray(plane))[None, None], alpha is not None


# ---- shapes and batches

def as_mask(mask):
    """Accept [H, W], [B, H, W] or [B, 1, H, W]; return [B, 1, H, W] float32."""
    mask = mask.float()
    while mask.dim() < 3:
        mask = mask[None]
    return mask[:, None] if mask.dim() == 3 else mask


def broadcast(*tensors):
    """Expand batch-1 tensors to the common batch size N; other mismatches are a UserError."""
    sizes = {t.shape[0] for t in tensors} - {1}
    if len(sizes) > 1:
        raise UserError(f"batch sizes {' and '.join(map(str, sorted(sizes)))} do not match "
                        "(only a batch of 1 is repeated to match another)")
    n = sizes.pop() if sizes else 1
    return [t.expand(n, *t.shape[1:]) if t.shape[0] != n else t for t in tensors]


# ---- resizing

PIL_FILTERS = {"lanczos": "LANCZOS", "bicubic": "BICUBIC", "bilinear": "BILINEAR", "nearest": "NEAREST"}


def resize(x, width, height, method="lanczos"):
    """Resize [B, C, H, W] with PIL's filters on float planes (no 8-bit rounding), clamped to 0..1."""
    if x.shape[-2:] == (height, width):
        return x
    from PIL import Image
    resample = getattr(Image.Resampling, PIL_FILTERS[method])
    out = torch.empty(x.shape[0], x.shape[1], height, width)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane = Image.fromarray(x[b, c].float().contiguous().numpy())  # mode "F"
            out[b, c] = torch.from_numpy(np.array(plane.resize((width, height), resample)))
    return out.clamp_(0, 1)


def resize_crop(x, width, height, method="lanczos"):
    """Scale to cover width x height and cut the centre, with diffusers' integer arithmetic
    (VaeImageProcessor._resize_and_crop)."""
    h0, w0 = x.shape[-2:]
    ratio, src_ratio = width / height, w0 / h0
    src_w = width if ratio > src_ratio else w0 * height // h0
    src_h = height if ratio <= src_ratio else h0 * width // w0
    x = resize(x, src_w, src_h, method)
    left, top = src_w // 2 - width // 2, src_h // 2 - height // 2
    return x[..., top:top + height, left:left + width].contiguous()


# ---- mask ops

def image_to_mask(image, channel):
    if channel == "luminance":
        w = torch.tensor(LUMA, dtype=image.dtype).view(1, 3, 1, 1)
        return (image * w).sum(1, keepdim=True).clamp(0, 1)
    return image[:, ("red", "green", "blue").index(channel)][:, None].clone()


def mask_to_image(mask):
    return as_mask(mask).expand(-1, 3, -1, -1).contiguous()


def grow(mask, pixels, shape="square", check=None):
    """Max filter (grow) or min filter (pixels < 0, shrink); pixels outside the image are ignored.

    square: a (2r+1) x (2r+1) box. round: a disk of radius r (x^2 + y^2 <= r^2). diamond:
    |x| + |y| <= r, as r passes of a 3x3 cross (exact for any values; the cost grows with r).
    The cost does not grow with r: a separable running max for the box; one Euclidean distance
    transform per distinct mask value for the disk (values are taken in 1/255 steps when a mask
    has more than 256). check() is called between passes (cancellation).
    """
    mask, r = as_mask(mask), abs(int(pixels))
    if r == 0:
        return mask.clone()
    sign = 1.0 if pixels > 0 else -1.0
    out = torch.empty_like(mask)
    for b in range(mask.shape[0]):
        plane = sign * mask[b, 0].numpy().astype(np.float32)
        out[b, 0] = torch.from_numpy(sign * _dilate(plane, r, shape, check or (lambda: None)))
    return out


def _dilate(x, r, shape, check):
    """Grey dilation of a 2-D array, worked out only around the values above its minimum
    (farther than r from them, everything stays the minimum)."""
    lo = x.min()
    rows, cols = np.flatnonzero((x > lo).any(axis=1)), np.flatnonzero((x > lo).any(axis=0))
    if not len(rows):
        return x.copy()
    y0, y1 = max(rows[0] - r, 0), rows[-1] + r + 1
    x0, x1 = max(cols[0] - r, 0), cols[-1] + r + 1
    out = np.full_like(x, lo)
    out[y0:y1, x0:x1] = _dilate_all(x[y0:y1, x0:x1], r, shape, check)
    return out


def _dilate_all(x, r, shape, check):
    from scipy import ndimage
    check()
    if shape == "square":  # mode "nearest" repeats the edge, which never adds a new maximum
        return ndimage.maximum_filter(x, size=2 * r + 1, mode="nearest")
    if shape == "diamond":
        cross = ndimage.generate_binary_structure(2, 1)
        for _ in range(r):
            check()
            x = ndimage.maximum_filter(x, footprint=cross, mode="nearest")
        return x
    levels = np.unique(x)
    if len(levels) > 256:
        x = np.round(x * 255) / 255
        levels = np.unique(x)
    out = np.full_like(x, levels[0])
    for v in levels[1:]:  # ascending: each level's disk-grown region overwrites the lower ones
        check()
        out[ndimage.distance_transform_edt(x < v) <= r] = v
    return out


def feather(mask, radius, check=None):
    """Gaussian blur: kernel half-width = radius, sigma = radius / 3; edges extended (replicate).

    Large radii convolve through the FFT, so the cost does not grow with the radius."""
    mask, r = as_mask(mask), int(radius)
    if r <= 0:
        return mask.clone()
    sigma = r / 3.0
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float64) ** 2) / (2 * sigma * sigma))
    k = (k / k.sum()).float()
    if r > FFT_RADIUS:
        return _feather_fft(mask, k.numpy(), r, check or (lambda: None))
    x = F.pad(mask, (r, r, 0, 0), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x.clamp_(0, 1)


FFT_RADIUS = 24


def _feather_fft(mask, k, r, check):
    from scipy.signal import fftconvolve
    out = torch.empty_like(mask)
    for b in range(mask.shape[0]):
        x = mask[b, 0].numpy().astype(np.float32)
        for axis in (1, 0):
            check()
            pad = [(0, 0), (0, 0)]
            pad[axis] = (r, r)
            kernel = k.reshape((1, -1) if axis == 1 else (-1, 1))
            x = fftconvolve(np.pad(x, pad, mode="edge"), kernel, mode="valid", axes=axis).astype(np.float32)
        out[b, 0] = torch.from_numpy(x)
    return out.clamp_(0, 1)


COMBINE = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "max": torch.maximum,
    "min": torch.minimum,
}


def combine(a, b, mode):
    """(a, b, resized): b is resized (bilinear) to a's size when they differ."""
    a, b = as_mask(a), as_mask(b)
    resized = a.shape[-2:] != b.shape[-2:]
    if resized:
        b = resize(b, a.shape[-1], a.shape[-2], "bilinear")
    a, b = broadcast(a, b)
    return COMBINE[mode](a, b).clamp(0, 1), resized


# ---- compositing

def to_u8(x):
    """0..1 floats -> int64 0..255, rounding as diffusers' numpy_to_pil."""
    return (x.float().clamp(0, 1) * 255).round().long()


def overlay(destination, source, mask):
    """Paste source over destination inside mask, as diffusers' VaeImageProcessor.apply_overlay.

    Where the 8-bit mask is 0 the destination is kept exactly and where it is 255 the source is
    taken exactly; in between, PIL's 8-bit arithmetic is reproduced (paste with the inverted mask
    into a premultiplied RGBa image, back to RGBA, alpha_composite over the source), so saving the
    result gives apply_overlay's pixels.
    """
    m = to_u8(as_mask(mask))
    c, g = to_u8(destination), to_u8(source)
    a = 255 - m
    t = c * a + 128
    p = ((t >> 8) + t) >> 8                                          # DIV255(c * a)
    u = torch.where((a == 0) | (a == 255), p, (255 * p) // a.clamp(min=1)).clamp(0, 255)
    t = (u * a + g * (255 - a)) * 128 + (128 << 7)                  # AlphaComposite.c, PRECISION_BITS 7
    blended = ((((t >> 8) + t) >> 8) >> 7).float() / 255.0
    out = torch.where(m == 0, destination.float(), blended)
    return torch.where(m == 255, source.float(), out)


def composite(destination, source, mask):
    """(image, notes): source and mask resized to destination's size when needed; batches broadcast."""
    mask = as_mask(mask)
    h, w = destination.shape[-2:]
    notes = []
    if source.shape[-2:] != (h, w):
        notes.append(f"source {source.shape[-1]}x{source.shape[-2]} resized to {w}x{h} (lanczos)")
        source = resize(source, w, h, "lanczos")
    if mask.shape[-2:] != (h, w):
        notes.append(f"mask {mask.shape[-1]}x{mask.shape[-2]} resized to {w}x{h} (bilinear)")
        mask = resize(mask, w, h, "bilinear")
    destination, source, mask = broadcast(destination, source, mask)
    return overlay(destination, source, mask), notes
