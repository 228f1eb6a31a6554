"""LoadImage, ResizeImage and CompositeMasked."""
import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from latentloom.app.core.errors import UserError
from latentloom.app.core.validate import load
from latentloom.app.engine.executor import Engine, NodeError
from latentloom.app.sd import images
from latentloom.nodes import catalog
from tests.test_masks import Ctx


def load_image(path):
    return catalog.get("LoadImage").fn(Ctx(path=path), path=str(path))


def test_load_rgba_png_alpha_becomes_mask(tmp_path):
    arr = np.zeros((3, 5, 4), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 10, 128, 255
    arr[..., 3] = [[255, 0, 51, 255, 255]] * 3
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    image, mask = out["image"], out["mask"]
    assert image.shape == (1, 3, 3, 5) and image.dtype == torch.float32
    assert mask.shape == (1, 1, 3, 5) and mask.dtype == torch.float32
    assert torch.equal(image[0, :, 0, 0], torch.tensor([10, 128, 255]) / torch.tensor(255.0))
    assert torch.allclose(mask[0, 0, 0], torch.tensor([0.0, 1.0, 0.8, 0.0, 0.0]))


def test_load_rgb_png_and_palette(tmp_path):
    arr = (np.arange(4 * 6 * 3) % 256).astype(np.uint8).reshape(4, 6, 3)
    Image.fromarray(arr).save(tmp_path / "rgb.png")
    out = load_image(tmp_path / "rgb.png")
    assert torch.all(out["mask"] == 0) and out["mask"].shape == (1, 1, 4, 6)
    assert torch.equal(out["image"], images.from_pil([Image.fromarray(arr)]))  # as diffusers reads it
    pal = Image.fromarray(arr).convert("P")
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png")["mask"].shape == (1, 1, 4, 6)


def test_load_exif_rotation(tmp_path):
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = 255  # white top-left pixel of a 4 wide, 2 high image
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=100, subsampling=0)
    image = load_image(tmp_path / "r.jpg")["image"]
    assert image.shape == (1, 3, 4, 2)  # upright: 2 wide, 4 high
    assert image[0, 0, 0, 1] > 0.8 and image[0, 0, 0, 0] < 0.2  # top-left moved to the top-right


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(UserError, match="broken.png"):
        load_image(bad)
    good = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    (tmp_path / "cut2.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(UserError, match="cut2.png"):
        load_image(tmp_path / "cut2.png")
    with pytest.raises(UserError, match="gone.png"):
        load_image(tmp_path / "gone.png")


def test_absurd_size_refused(tmp_path, monkeypatch):
    from latentloom.app.sd import masks
    Image.new("RGB", (64, 32)).save(tmp_path / "big.png")
    monkeypatch.setattr(masks, "MAX_PIXELS", 1000)
    with pytest.raises(UserError, match="too large"):
        load_image(tmp_path / "big.png")
    monkeypatch.setattr(masks, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # PIL's bomb guard stays on
    with pytest.raises(UserError, match="big.png"):
        load_image(tmp_path / "big.png")


def test_load_image_failure_through_engine(tmp_path):
    (tmp_path / "x.png").write_bytes(b"junk")
    wf = load({"format": "latentloom.workflow", "version": 1,
               "nodes": {"load": {"type": "LoadImage", "params": {"path": str(tmp_path / "x.png")}}}}, catalog)
    with pytest.raises(NodeError, match="x.png"):
        Engine(catalog, output_dir=tmp_path, env=None).run(wf, targets=["load"])


def resize(image, **params):
    return catalog.get("ResizeImage").fn(Ctx(), image=image, **params)


def test_resize_sizes_and_pixels():
    image = torch.rand(2, 3, 20, 30)
    for crop in ("none", "center"):
        for method in ("lanczos", "bicubic", "bilinear", "nearest"):
            out = resize(image, width=16, height=24, method=method, crop=crop)
            assert out.shape == (2, 3, 24, 16) and out.min() >= 0 and out.max() <= 1
    # nearest 2x2 -> 4x4 repeats each pixel in a 2x2 block
    small = torch.tensor([[0.0, 0.25], [0.5, 1.0]]).expand(1, 3, 2, 2)
    out = resize(small, width=4, height=4, method="nearest", crop="none")
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 0, 0.25, 0.25], [0, 0, 0.25, 0.25],
                                                [0.5, 0.5, 1, 1], [0.5, 0.5, 1, 1]]))
    # center crop of an 8 wide, 4 high ramp to 4x4 keeps the middle columns 2..5
    ramp = (torch.arange(8.0) / 8).expand(1, 3, 4, 8)
    out = resize(ramp, width=4, height=4, method="nearest", crop="center")
    assert torch.equal(out[0, 1, 0], torch.tensor([2.0, 3, 4, 5]) / 8)
    # float precision is kept (no 8-bit rounding)
    flat = torch.full((1, 3, 4, 4), 0.123456)
    assert torch.allclose(resize(flat, width=8, height=8, method="bicubic", crop="none"), flat.new_full((1, 3, 8, 8), 0.123456))


def test_center_crop_matches_diffusers():
    yy, xx = np.mgrid[0:30, 0:50]  # smooth: PIL's 8-bit passes clip lanczos overshoot, floats don't
    arr = np.stack([xx * 5, yy * 8, (xx + yy) * 3], -1).astype(np.uint8)
    pil = Image.fromarray(arr)
    for w, h in ((24, 24), (40, 16), (16, 40)):
        ref = VaeImageProcessor().resize(pil, height=h, width=w, resize_mode="crop")
        out = resize(images.from_pil([pil]), width=w, height=h, method="lanczos", crop="center")
        diff = np.abs(np.asarray(images.to_pil(out)[0], np.int16) - np.asarray(ref, np.int16))
        assert out.shape == (1, 3, h, w) and diff.max() <= 1  # float vs 8-bit resampling


def overlay_case(seed, size=(24, 16), soft=True):
    rng = np.random.default_rng(seed)
    w, h = size
    init = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gen = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if not soft:
        mask = np.where(mask > 127, 255, 0).astype(np.uint8)
    mask[0, :] = 0
    mask[1, :] = 255
    return init, gen, mask


@pytest.mark.parametrize("soft", [False, True])
def test_composite_equals_apply_overlay(soft):
    init, gen, mask = overlay_case(2, soft=soft)
    ref = VaeImageProcessor().apply_overlay(Image.fromarray(mask), Image.fromarray(init), Image.fromarray(gen))
    dest = images.from_pil([Image.fromarray(init)])
    src = images.from_pil([Image.fromarray(gen)])
    m = torch.from_numpy(mask.astype(np.float32) / 255)[None, None]
    out = catalog.get("CompositeMasked").fn(Ctx(), destination=dest, source=src, mask=m)
    assert out.shape == dest.shape
    assert np.array_equal(np.asarray(images.to_pil(out)[0]), np.asarray(ref))


def test_composite_all_8bit_mask_and_original_values():
    # every (original, mask) byte pair with 16 generated values each, against PIL, 2^20 pixels at once
    # (all 2^24 triples were checked once too; that takes 10 s)
    idx = np.arange(1 << 20)
    c, k, j = (idx >> 8) & 255, idx & 255, idx >> 16
    g = (c * 97 + k * 31 + j * 17) % 256
    u8 = lambda *chans: np.stack(chans, -1).astype(np.uint8).reshape(1024, 1024, -1)  # noqa: E731
    init, gen, mask = u8(c, g, 255 - c), u8(g, c, (g + 128) % 256), u8(k)[..., 0]
    ref = VaeImageProcessor().apply_overlay(Image.fromarray(mask), Image.fromarray(init), Image.fromarray(gen))
    from latentloom.app.sd import masks
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    out = masks.overlay(t(init), t(gen), torch.from_numpy(mask)[None, None].float() / 255)
    assert np.array_equal(np.asarray(images.to_pil(out)[0]), np.asarray(ref))


def test_composite_keeps_original_exactly_and_resizes():
    dest = torch.rand(1, 3, 16, 16)  # not 8-bit values: must come through untouched
    src = torch.rand(2, 3, 8, 8)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    ctx = Ctx()
    out = catalog.get("CompositeMasked").fn(ctx, destination=dest, source=src, mask=mask)
    assert out.shape == (2, 3, 16, 16)
    keep = mask.expand(2, 3, 16, 16) == 0
    assert torch.equal(out[keep], dest.expand(2, 3, 16, 16)[keep])
    from latentloom.app.sd import masks
    big = masks.resize(src, 16, 16, "lanczos")
    assert torch.equal(out[..., 4:12, 4:12], big[..., 4:12, 4:12])
    assert any("source 8x8 resized to 16x16" in line for line in ctx.logs)
    ctx = Ctx()
    catalog.get("CompositeMasked").fn(ctx, destination=dest, source=dest, mask=torch.ones(1, 1, 4, 4))
    assert ctx.logs == ["mask 4x4 resized to 16x16 (bilinear)"]
