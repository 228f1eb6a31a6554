"""Control images made without downloaded models (OpenCV), and depth maps from a user's model.

IMAGE tensors [b, 3, H, W] in 0..1 go to uint8 RGB arrays (rounded as diffusers rounds) and back.
"""
import numpy as np
import torch

from latentloom.app.core.errors import UserError


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


# OpenPose's 18 body points from COCO's 17 (index 1, the neck, is the shoulders' midpoint), the
# limbs between them and the colours the openpose ControlNets were trained on.
OPENPOSE_FROM_COCO = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
          (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
          (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]


def _openpose_points(coco, scores, threshold):
    points = []
    for src in OPENPOSE_FROM_COCO:
        if src is None:  # neck
            ok = scores[5] >= threshold and scores[6] >= threshold
            points.append(tuple((coco[5] + coco[6]) / 2) if ok else None)
        else:
            points.append(tuple(coco[src]) if scores[src] >= threshold else None)
    return points


def draw_pose(height, width, points):
    """An OpenPose-style skeleton on black: limbs as ellipses at 60 % colour, joints as dots."""
    import cv2
    canvas = np.zeros((height, width, 3), np.uint8)
    for i, (a, b) in enumerate(LIMBS):
        if points[a] is None or points[b] is None:
            continue
        (xa, ya), (xb, yb) = points[a], points[b]
        length = float(np.hypot(xa - xb, ya - yb))
        angle = float(np.degrees(np.arctan2(ya - yb, xa - xb)))
        polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), 4), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(c * 0.6) for c in COLORS[i]])
    for i, p in enumerate(points):
        if p is not None:
            cv2.circle(canvas, (int(p[0]), int(p[1])), 4, COLORS[i], thickness=-1)
    return canvas


def pose(image, model_dir, threshold=0.3):
    """One person's pose over the whole image from a transformers ViTPose model folder, drawn as the
    openpose ControlNets expect."""
    from PIL import Image
    from transformers import AutoProcessor, VitPoseForPoseEstimation
    try:
        processor = AutoProcessor.from_pretrained(str(model_dir), local_files_only=True)
        model = VitPoseForPoseEstimation.from_pretrained(str(model_dir), local_files_only=True).eval()
    except Exception as e:
        raise UserError(f"param 'path': {model_dir} could not be loaded as a transformers ViTPose model "
                        f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from e
    out = []
    for a in to_arrays(image):
        h, w = a.shape[:2]
        boxes = [[[0, 0, w, h]]]
        inputs = processor(Image.fromarray(a), boxes=boxes, return_tensors="pt")
        with torch.no_grad():
            found = processor.post_process_pose_estimation(model(**inputs), boxes=boxes)[0][0]
        points = _openpose_points(found["keypoints"].numpy(), found["scores"].numpy(), threshold)
        out.append(draw_pose(h, w, points))
    return from_arrays(out)
