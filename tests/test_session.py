"""The session layer: --set over several workflows, self-sufficient PNGs, batch images, validate = run."""
import json
import os

import numpy as np
from PIL import Image

from latentloom.app.cli import main
from tests.conftest import WORKFLOWS

TXT2IMG, IMG2IMG = str(WORKFLOWS / "txt2img.json"), str(WORKFLOWS / "img2img.json")


def tiny(tiny_dir):
    return ["--set", f"ckpt.path={tiny_dir}", "--set", "ckpt.dtype=fp32", "--set", "sampler.steps=2"]


def test_set_applies_to_each_workflow_that_has_the_node(tiny_dir, tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["run", TXT2IMG, IMG2IMG, *tiny(tiny_dir), "--set", "latent.width=64", "--set", "latent.height=64",
                 "--set", "resize.width=64", "--set", "resize.height=64", "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--quiet", "--report", str(report)])
    assert code == 0
    runs = json.loads(report.read_text())["runs"]
    sizes = [Image.open(r["outputs"][0]).size for r in runs]
    assert sizes == [(64, 64), (64, 64)]
    assert main(["validate", TXT2IMG, IMG2IMG, "--set", "nope.width=3"]) == 2
    assert "node 'nope': --set 'nope.width=3': no such node in any workflow" in capsys.readouterr().err


def test_img2img_png_reruns_from_another_folder(tiny_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    sets = [*tiny(tiny_dir), "--set", "resize.width=64", "--set", "resize.height=64"]
    assert main(["run", IMG2IMG, *sets, "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    first = out / "img2img_00001.png"
    embedded = json.loads(Image.open(first).info["latentloom.workflow"])
    assert embedded["nodes"]["image"]["params"]["path"] == str(WORKFLOWS / "inputs" / "landscape.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["run", str(first), "--out", "again", "--device", "cpu", "--quiet"]) == 0
    assert np.array_equal(np.array(Image.open(first)), np.array(Image.open(elsewhere / "again" / "img2img_00001.png")))


def test_each_batch_image_reproduces_exactly_that_image(tiny_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["run", TXT2IMG, *tiny(tiny_dir), "--set", "latent.width=64", "--set", "latent.height=64",
                 "--set", "latent.batch_size=3", "--set", "scheduler.name=euler_ancestral", "--out", str(out),
                 "--device", "cpu", "--quiet"]) == 0
    batch = [out / f"txt2img_{i:05d}.png" for i in (1, 2, 3)]
    images = [np.array(Image.open(p)) for p in batch]
    assert not np.array_equal(images[0], images[1])
    for i, path in enumerate(batch):
        info = Image.open(path).info
        doc = json.loads(info["latentloom.workflow"])
        assert doc["nodes"]["save"]["inputs"]["image"] == ["save_batch_pick", "image"]
        assert doc["nodes"]["save_batch_pick"]["params"] == {"index": i, "length": 1}
        assert f"Batch size: 3, Batch pos: {i}" in info["parameters"]
        again = tmp_path / f"again{i}"
        assert main(["run", str(path), "--out", str(again), "--device", "cpu", "--quiet"]) == 0
        assert sorted(p.name for p in again.iterdir()) == ["txt2img_00001.png"]
        assert np.array_equal(np.array(Image.open(again / "txt2img_00001.png")), images[i]), i


def test_validate_checks_files_as_run_does_and_takes_models(tmp_path, capsys):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    assert main(["validate", TXT2IMG, "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert f"file not found: 'v1-5-pruned-emaonly.safetensors'; put it into {models / 'checkpoints'}" in err
    (models / "checkpoints" / "v1-5-pruned-emaonly.safetensors").write_bytes(b"x")
    assert main(["validate", TXT2IMG, "--models", str(models)]) == 0


def test_reader_registry_takes_a_new_format(tmp_path):
    from latentloom.app.session import Session, readers
    reader = readers.Reader("test-yaml-ish", "json", lambda v: isinstance(v, dict) and "recipe" in v,
                            lambda v: json.loads(open(TXT2IMG).read()))
    readers.register(reader)
    try:
        path = tmp_path / "x.json"
        path.write_text(json.dumps({"recipe": 1}))
        doc = Session(models_dirs=[]).open(path)
        assert doc.reader == "test-yaml-ish" and doc.data["nodes"]["save"]["type"] == "SaveImage"
    finally:
        readers.JSON_READERS.remove(reader)


def test_launcher_without_display_says_how_to_work_headless(monkeypatch, capsys):
    from latentloom.app import launcher
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(launcher.sys, "platform", "linux")
    assert launcher.main([]) == 2
    assert capsys.readouterr().err.strip() == launcher.NO_DISPLAY
    assert "QT_QPA_PLATFORM=offscreen" in launcher.NO_DISPLAY and os.environ.get("DISPLAY") is None
