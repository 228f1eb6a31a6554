"""Control images made without downloaded models (OpenCV), and depth maps from a user's model.

IMAGE tensors [b, 3, H, W] in 0..1 go to uint8 RGB arrays (rounded as diffusers rounds) and back.
"""
import numpy as np
import torch

from app.core.errors import UserError


def to_arrays(image):
    """IMAGE -> list of uint8 [H, W, 3] arrays."""
    return list((image.permute(0, 2, 3, 1).cpu().float().numpy() * 255).round().clip(0, 255).astype(np.uint8))


def from_arrays(arrays):
    """uint8 [H, W] or [H, W, 3] arrays -> IMAGE (grey maps become three equal channels)."""
    out = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def canny(image, low, high):
    """Edges as white lines on black, as the canny ControlNets were trained (cv2.Canny on RGB)."""
    import cv2
    return from_arrays([cv2.Canny(a, low, high) for a in to_arrays(image)])


def lines(image, threshold, thickness=0):
    """Dark strokes on a light page -> white lines on black (lineart/scribble ControlNets);
    thickness > 0 widens them by that many pixels (scribbles)."""
    import cv2
    out = []
    for a in to_arrays(image):
        grey = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        _, mask = cv2.threshold(grey, round(threshold * 255), 255, cv2.THRESH_BINARY_INV)
        if thickness:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * thickness + 1, 2 * thickness + 1))
            mask = cv2.dilate(mask, kernel)
        out.append(mask)
    return from_arrays(out)


def invert(image):
    import cv2
    return from_arrays([cv2.bitwise_not(a) for a in to_arrays(image)])


def depth(image, model_dir):
    """A depth map from a transformers depth-estimation model folder (DPT, Depth Anything...),
    as diffusers' depth ControlNet examples make it: transformers' depth-estimation pipeline."""
    from PIL import Image
    from transformers import pipeline
    try:
        estimator = pipeline("depth-estimation", model=str(model_dir), local_files_only=True)
    except Exception as e:
        raise UserError(f"param 'path': {model_dir} could not be loaded as a transformers depth-estimation "
                        f"model ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from e
    maps = [np.array(estimator(Image.fromarray(a))["depth"].convert("L")) for a in to_arrays(image)]
    return from_arrays(maps)
