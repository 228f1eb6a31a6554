"""Control-image preprocessors: OpenCV edges and lines, inversion, pass-through, a user's depth and pose models."""
import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.core.validate import load
from latentloom.app.core.workflow import WorkflowError
from latentloom.app.engine.executor import NodeError
from latentloom.nodes import catalog


def square(tmp_path, size=32, inner=(8, 24), ink=0, page=255):
    """A page with a filled square of ink."""
    a = np.full((size, size, 3), page, np.uint8)
    a[inner[0]:inner[1], inner[0]:inner[1]] = ink
    path = tmp_path / "in.png"
    Image.fromarray(a).save(path)
    return path


def run(engine, image_path, type, **params):
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "img": {"type": "LoadImage", "params": {"path": str(image_path)}},
        "pre": {"type": type, "params": params, "inputs": {"image": ["img", "image"]}},
        "save": {"type": "SaveImage", "inputs": {"image": ["pre", "image"]}}}}
    result = engine.run(load(doc, catalog))
    image = result.values["pre"]["image"]
    assert image.shape[1] == 3 and torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 0], image[:, 2])
    return image[0, 0].numpy()


def test_canny_draws_the_square_outline(engine, tmp_path):
    import cv2
    edges = run(engine, square(tmp_path, page=255, ink=0), "Canny", low=100, high=200)
    assert set(np.unique(edges)) == {0.0, 1.0}
    expected = cv2.Canny(np.array(Image.open(tmp_path / "in.png").convert("RGB")), 100, 200) / 255
    assert np.array_equal(edges, expected)
    ys, xs = np.nonzero(edges)
    assert 6 <= ys.min() <= 8 and 23 <= ys.max() <= 25 and 6 <= xs.min() <= 8 and 23 <= xs.max() <= 25
    assert edges[16, 16] == 0 and edges[0, 0] == 0  # inside and outside stay black


def test_lineart_turns_dark_ink_into_white_lines(engine, tmp_path):
    out = run(engine, square(tmp_path, ink=40, page=230), "Lineart", threshold=0.5)
    expected = np.zeros((32, 32))
    expected[8:24, 8:24] = 1
    assert np.array_equal(out, expected)
    assert not run(engine, square(tmp_path, ink=200, page=230), "Lineart", threshold=0.5).any()


def test_scribble_widens_strokes(engine, tmp_path):
    thin = run(engine, square(tmp_path, inner=(15, 17)), "Scribble", threshold=0.5, thickness=0)
    wide = run(engine, square(tmp_path, inner=(15, 17)), "Scribble", threshold=0.5, thickness=3)
    assert thin.sum() == 4
    assert wide[12:20, 12:20].sum() > thin.sum() and wide[15:17, 15:17].all() and not wide[:10].any()


def test_invert_and_pass_through(engine, tmp_path):
    path = square(tmp_path, ink=10, page=200)
    original = np.array(Image.open(path).convert("L")) / 255
    assert np.allclose(run(engine, path, "Invert"), 1 - original, atol=1e-6)
    assert np.array_equal(run(engine, path, "ImageToControl"), original.astype(np.float32))


def test_canny_low_above_high_is_a_validation_error(tmp_path):
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "img": {"type": "LoadImage", "params": {"path": "x.png"}},
        "pre": {"type": "Canny", "params": {"low": 210, "high": 100}, "inputs": {"image": ["img", "image"]}}}}
    with pytest.raises(WorkflowError) as info:
        load(doc, catalog)
    assert [str(p) for p in info.value.problems] == ["node 'pre' param 'low': low 210 is above high 100"]


def test_depth_and_pose_without_the_model_name_the_file_and_folder(tmp_path):
    from latentloom.app.session.session import Session
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "img": {"type": "LoadImage", "params": {"path": str(square(tmp_path))}},
        "depth": {"type": "DepthMap", "inputs": {"image": ["img", "image"]}},
        "pose": {"type": "PoseMap", "inputs": {"image": ["img", "image"]}},
        "save": {"type": "SaveImage", "inputs": {"image": ["depth", "image"]}},
        "save2": {"type": "SaveImage", "inputs": {"image": ["pose", "image"]}}}}
    session = Session(models_dirs=[tmp_path / "models"], output_dir=tmp_path / "out")
    with pytest.raises(WorkflowError) as info:
        session.prepare(doc)
    folder = (tmp_path / "models" / "annotators").resolve()
    assert [str(p) for p in info.value.problems] == [
        f"node 'depth' param 'path': file not found: 'dpt-hybrid-midas'; put it into {folder}",
        f"node 'pose' param 'path': file not found: 'vitpose-base-simple'; put it into {folder}"]


@pytest.fixture(scope="module")
def tiny_depth_model(tmp_path_factory):
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor
    path = tmp_path_factory.mktemp("annotators") / "tiny-dpt"
    torch.manual_seed(0)
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                       image_size=32, patch_size=8, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                       backbone_out_indices=[0, 1, 2, 3])
    DPTForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_depth_matches_the_transformers_pipeline(engine, tmp_path, tiny_depth_model):
    from transformers import pipeline
    path = square(tmp_path, size=40)
    out = run(engine, path, "DepthMap", path=str(tiny_depth_model))
    expected = pipeline("depth-estimation", model=str(tiny_depth_model))(Image.open(path).convert("RGB"))["depth"]
    assert np.array_equal(np.round(out * 255).astype(np.uint8), np.array(expected.convert("L")))


def test_a_folder_that_is_no_depth_model_is_a_clear_error(engine, tmp_path):
    (tmp_path / "empty-model").mkdir()
    (tmp_path / "empty-model" / "config.json").write_text("{}")  # looks like a model folder, is none
    with pytest.raises(NodeError, match=r"node 'pre' \(DepthMap\) failed: param 'path': .*empty-model could not "
                                        r"be loaded as a transformers depth-estimation model"):
        run(engine, square(tmp_path), "DepthMap", path=str(tmp_path / "empty-model"))


def test_draw_pose_uses_the_openpose_palette():
    from latentloom.app.sd.control_images import COLORS, draw_pose
    points = [(20, 10), (20, 20), (12, 20), (10, 30), (10, 40), (28, 20), (30, 30), (30, 40), (15, 40), (15, 50),
              (15, 58), (25, 40), (25, 50), (25, 58), (13, 3), (27, 3), None, None]
    canvas = draw_pose(64, 40, points)
    colours = {tuple(c) for c in canvas.reshape(-1, 3).tolist()}
    palette = set(COLORS) | {tuple(int(x * 0.6) for x in c) for c in COLORS} | {(0, 0, 0)}
    assert colours <= palette and len(colours) > 10
    assert tuple(canvas[10, 20]) == COLORS[0]  # the nose dot is drawn over the limbs
    assert not canvas[:, :4].any()  # nothing far from the body


@pytest.fixture(scope="module")
def tiny_pose_model(tmp_path_factory):
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation, VitPoseImageProcessor
    path = tmp_path_factory.mktemp("annotators") / "tiny-vitpose"
    torch.manual_seed(0)
    backbone = VitPoseBackboneConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                                     image_size=[64, 48], patch_size=[16, 16], out_indices=[2])
    VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, num_labels=17)).save_pretrained(path)
    VitPoseImageProcessor(size={"height": 64, "width": 48}).save_pretrained(path)
    return path


def test_pose_map_draws_the_models_keypoints(engine, tmp_path, tiny_pose_model):
    from transformers import AutoProcessor, VitPoseForPoseEstimation
    from latentloom.app.sd import control_images
    path = square(tmp_path, size=48)
    out = run_rgb(engine, path, "PoseMap", path=str(tiny_pose_model), threshold=0.0)
    processor = AutoProcessor.from_pretrained(tiny_pose_model)
    model = VitPoseForPoseEstimation.from_pretrained(tiny_pose_model)
    boxes = [[[0, 0, 48, 48]]]
    with torch.no_grad():
        found = processor.post_process_pose_estimation(
            model(**processor(Image.open(path).convert("RGB"), boxes=boxes, return_tensors="pt")), boxes=boxes)[0][0]
    inside = [(int(x), int(y)) for x, y in found["keypoints"].numpy() if 0 <= x < 48 and 0 <= y < 48]
    assert inside and all(out[y, x].any() for x, y in inside)  # a dot at every keypoint on the canvas
    assert np.array_equal(out, control_images.draw_pose(48, 48, control_images._openpose_points(
        found["keypoints"].numpy(), found["scores"].numpy(), 0.0)))


def run_rgb(engine, image_path, type, **params):
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "img": {"type": "LoadImage", "params": {"path": str(image_path)}},
        "pre": {"type": type, "params": params, "inputs": {"image": ["img", "image"]}},
        "save": {"type": "SaveImage", "inputs": {"image": ["pre", "image"]}}}}
    image = engine.run(load(doc, catalog)).values["pre"]["image"]
    return np.round(image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
