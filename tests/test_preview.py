"""PreviewImage: shown, never written, still an output node."""
import json

import numpy as np
from PIL import Image

from latentloom.app.engine import events as ev
from tests.conftest import WORKFLOWS, load_workflow


def preview_doc():
    doc = json.loads((WORKFLOWS / "txt2img.json").read_text())
    doc["nodes"]["save"] = {"type": "PreviewImage", "inputs": {"image": ["decode", "image"]}}
    return doc


def test_preview_shows_the_image_and_writes_nothing(engine, tiny_dir, tmp_path):
    sets = {"ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "sampler.steps": 2, "latent.width": 64,
            "latent.height": 64}
    saved = engine.run(load_workflow("txt2img.json", **sets))
    expected = np.array(Image.open(saved.outputs[0]))
    wf = load_workflow("txt2img.json", **sets)
    from latentloom.app.core.validate import load
    from latentloom.nodes import catalog
    doc = wf.to_json()
    doc["nodes"]["save"] = {"type": "PreviewImage", "inputs": {"image": ["decode", "image"]}}
    seen = []
    out = tmp_path / "preview-out"
    engine.output_dir = out
    result = engine.run(load(doc, catalog), on_event=seen.append)
    shown = [e for e in seen if isinstance(e, ev.NodeImage)]
    assert [e.node_id for e in shown] == ["save"] and len(shown[0].images) == 1
    assert np.array_equal(np.array(shown[0].images[0]), expected)
    assert result.outputs == [] and not out.exists()
    assert result.executed == ["save"] and "decode" in result.cached  # output nodes always run


def test_cli_runs_a_preview_only_workflow(tiny_dir, tmp_path, capsys):
    from latentloom.app.cli import main
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(preview_doc()))
    code = main(["run", str(path), "--set", f"ckpt.path={tiny_dir}", "--set", "ckpt.dtype=fp32",
                 "--set", "sampler.steps=1", "--set", "latent.width=64", "--set", "latent.height=64",
                 "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 0
    assert "  save: 1 preview image(s), not saved" in capsys.readouterr().err  # progress goes to stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_editor_shows_a_preview_event(qtbot, tmp_path):
    from PySide6.QtCore import QSettings
    from latentloom.app.ui.settings import Settings
    from latentloom.app.ui.window import MainWindow
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    image = Image.new("RGB", (24, 16), (200, 10, 30))
    window.runs._on_event(ev.NodeImage("pv", (image,)))
    assert window.images.current_path is None
    assert window.images.current_image.size().width() == 24
    assert window.images.caption.text() == "pv: preview (not saved)"
