"""Mask nodes on small hand-made tensors, and a mask workflow through the real engine."""
import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.core.errors import UserError
from latentloom.app.core.validate import load
from latentloom.app.engine.executor import Engine
from latentloom.nodes import catalog


class Ctx:
    """Stands in for the engine's Context: records logs, resolves file params to given paths."""

    def __init__(self, **files):
        self.files, self.logs = files, []

    def log(self, message):
        self.logs.append(message)

    def file(self, param):
        return str(self.files[param])

    def check_cancel(self):
        pass


def run(type, **kw):
    return catalog.get(type).fn(Ctx(), **kw)


def m(rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def dot(size=5, at=(2, 2)):
    x = torch.zeros(1, 1, size, size)
    x[0, 0, at[0], at[1]] = 1
    return x


def test_grow_one_square_gives_3x3_block():
    out = run("GrowMask", mask=dot(), pixels=1, shape="square")
    expected = torch.zeros(1, 1, 5, 5)
    expected[..., 1:4, 1:4] = 1
    assert torch.equal(out, expected)


def test_grow_round_is_a_disk():
    out = run("GrowMask", mask=dot(), pixels=1, shape="round")
    assert torch.equal(out, m([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0],
                               [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    out = run("GrowMask", mask=dot(9, (4, 4)), pixels=3, shape="round")[0, 0]
    yy, xx = torch.meshgrid(torch.arange(9) - 4, torch.arange(9) - 4, indexing="ij")
    assert torch.equal(out, (yy ** 2 + xx ** 2 <= 9).float())


def test_grow_keeps_soft_values_and_shrink_inverts_grow():
    x = torch.zeros(1, 1, 7, 7)
    x[..., 3, 3], x[..., 0, 6] = 0.25, 0.5
    out = run("GrowMask", mask=x, pixels=1, shape="square")
    assert out[0, 0, 2, 2] == 0.25 and out[0, 0, 1, 5] == 0.5 and out[0, 0, 5, 5] == 0
    block = torch.zeros(1, 1, 7, 7)
    block[..., 1:6, 1:6] = 1
    shrunk = run("GrowMask", mask=block, pixels=-2, shape="square")
    assert torch.equal(shrunk, dot(7, (3, 3)))
    # the image border does not erode a mask that touches it
    assert torch.equal(run("GrowMask", mask=torch.ones(1, 1, 4, 4), pixels=-1, shape="round"),
                       torch.ones(1, 1, 4, 4))


def test_threshold_invert():
    x = m([[0.0, 0.49, 0.5, 0.51, 1.0]])
    assert torch.equal(run("ThresholdMask", mask=x, value=0.5), m([[0, 0, 1, 1, 1]]))
    assert torch.equal(run("ThresholdMask", mask=x, value=0.0), torch.ones_like(x))
    assert torch.allclose(run("InvertMask", mask=x), m([[1.0, 0.51, 0.5, 0.49, 0.0]]))


@pytest.mark.parametrize("mode, expected", [
    ("add", [[1.0, 1.0, 0.5, 0.0]]),
    ("subtract", [[0.0, 0.5, 0.0, 0.0]]),
    ("multiply", [[0.5, 0.5, 0.0, 0.0]]),
    ("max", [[1.0, 1.0, 0.5, 0.0]]),
    ("min", [[0.5, 0.5, 0.0, 0.0]]),
])
def test_combine_modes(mode, expected):
    a, b = m([[0.5, 1.0, 0.0, 0.0]]), m([[1.0, 0.5, 0.5, 0.0]])
    assert torch.allclose(run("CombineMasks", a=a, b=b, mode=mode), m(expected))


def test_combine_resizes_b_and_broadcasts_batches():
    ctx = Ctx()
    a = torch.zeros(3, 1, 4, 4)
    b = torch.ones(1, 1, 2, 2)
    out = catalog.get("CombineMasks").fn(ctx, a=a, b=b, mode="add")
    assert out.shape == (3, 1, 4, 4) and torch.equal(out, torch.ones(3, 1, 4, 4))
    assert any("resized" in line for line in ctx.logs)
    with pytest.raises(UserError, match="batch sizes 2 and 3"):
        run("CombineMasks", a=torch.zeros(2, 1, 4, 4), b=torch.zeros(3, 1, 4, 4), mode="max")


def test_feather_symmetric_and_in_range():
    x = torch.zeros(1, 1, 21, 21)
    x[..., 8:13, 8:13] = 1
    out = run("FeatherMask", mask=x, radius=4)
    assert out.min() >= 0 and out.max() <= 1
    assert 0 < out[0, 0, 10, 6] < 1 and out[0, 0, 0, 0] == 0  # edge softened, far away untouched
    assert torch.allclose(out, out.flip(-1), atol=1e-6) and torch.allclose(out, out.flip(-2), atol=1e-6)
    assert torch.allclose(out, out.transpose(-1, -2), atol=1e-6)
    assert out[0, 0, 10, 10] > out[0, 0, 10, 8] > out[0, 0, 10, 6]
    assert torch.equal(run("FeatherMask", mask=x, radius=0), x)
    # a full mask stays full (edges are extended, not padded with 0)
    assert torch.allclose(run("FeatherMask", mask=torch.ones(1, 1, 6, 6), radius=5), torch.ones(1, 1, 6, 6))


def test_solid_image_mask_roundtrip():
    solid = run("SolidMask", value=0.25, width=16, height=8)
    assert solid.shape == (1, 1, 8, 16) and solid.dtype == torch.float32 and torch.all(solid == 0.25)
    image = run("MaskToImage", mask=solid)
    assert image.shape == (1, 3, 8, 16) and torch.all(image == 0.25)
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 0.2, 0.4, 1.0
    assert torch.allclose(run("ImageToMask", image=rgb, channel="green"), torch.full((1, 1, 2, 2), 0.4))
    luma = run("ImageToMask", image=rgb, channel="luminance")
    assert torch.allclose(luma, torch.full((1, 1, 2, 2), 0.299 * 0.2 + 0.587 * 0.4 + 0.114))


def test_load_mask_channels(tmp_path):
    arr = np.zeros((4, 6, 4), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 255, 51, 0
    arr[..., 3] = 255
    arr[:2, :, 3] = 0  # top half transparent
    path = tmp_path / "m.png"
    Image.fromarray(arr, "RGBA").save(path)
    fn = catalog.get("LoadMask").fn
    assert torch.all(fn(Ctx(path=path), path="m.png", channel="red") == 1)
    assert torch.allclose(fn(Ctx(path=path), path="m.png", channel="green"), torch.full((1, 1, 4, 6), 0.2))
    alpha = fn(Ctx(path=path), path="m.png", channel="alpha")
    assert torch.all(alpha[..., :2, :] == 1) and torch.all(alpha[..., 2:, :] == 0)
    luma = fn(Ctx(path=path), path="m.png", channel="luminance")
    expected = np.asarray(Image.fromarray(arr[..., :3]).convert("L"), np.float32) / 255  # as diffusers
    assert torch.equal(luma[0, 0], torch.from_numpy(expected))
    rgb_path = tmp_path / "rgb.png"
    Image.fromarray(arr[..., :3]).save(rgb_path)
    ctx = Ctx(path=rgb_path)
    assert torch.all(catalog.get("LoadMask").fn(ctx, path="rgb.png", channel="alpha") == 0)
    assert ctx.logs and "no alpha" in ctx.logs[0]


def test_mask_workflow_through_engine(tmp_path):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., :3] = 200
    arr[..., 3] = 255
    arr[2:4, 2:6, 3] = 0  # a transparent hole
    path = tmp_path / "in.png"
    Image.fromarray(arr, "RGBA").save(path)
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {
        "load": {"type": "LoadImage", "params": {"path": str(path)}},
        "tomask": {"type": "ImageToMask", "params": {"channel": "red"}, "inputs": {"image": ["load", "image"]}},
        "invert": {"type": "InvertMask", "inputs": {"mask": ["tomask", "mask"]}},
        "alpha": {"type": "GrowMask", "params": {"pixels": 1}, "inputs": {"mask": ["load", "mask"]}},
        "both": {"type": "CombineMasks", "params": {"mode": "max"},
                 "inputs": {"a": ["invert", "mask"], "b": ["alpha", "mask"]}},
    }}
    wf = load(doc, catalog)
    engine = Engine(catalog, output_dir=tmp_path / "out", env=None)
    result = engine.run(wf, targets=["both"])
    assert result.executed == ["load", "tomask", "invert", "alpha", "both"]
    inverted = result.values["invert"]["mask"]
    assert torch.allclose(inverted, torch.full((1, 1, 8, 8), 1 - 200 / 255))
    expected = torch.full((1, 1, 8, 8), 1 - 200 / 255)
    expected[..., 1:5, 1:7] = 1  # the hole grown by 1
    assert torch.allclose(result.values["both"]["mask"], expected)
    # unchanged file: all cached; edited file (same name): LoadImage and everything after re-run
    assert engine.run(wf, targets=["both"]).cached == ["load", "tomask", "invert", "alpha", "both"]
    arr[..., 3] = 255
    Image.fromarray(arr, "RGBA").save(path)
    again = engine.run(wf, targets=["both"])
    assert "load" in again.executed
    assert torch.allclose(again.values["both"]["mask"], torch.full((1, 1, 8, 8), 1 - 200 / 255))
