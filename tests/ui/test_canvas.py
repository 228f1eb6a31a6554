"""Editing on the canvas: params on the nodes (with undo, in sync with the properties panel),
model dropdowns, the missing-model report, seed after run, the palette, node ids and groups."""
import json
import random

from PySide6.QtCore import QPoint
from PySide6.QtGui import QGuiApplication

from latentloom.app.engine.png import read_workflow
from tests.conftest import WORKFLOWS
from tests.ui.conftest import run_and_wait, tiny_run_params


def params(window, nid):
    return window.doc.workflow.nodes[nid].params


def test_params_edited_on_the_nodes_with_undo_and_the_panel_in_sync(window):
    d, v = window.doc, window.view
    window.view.select(["sampler"])
    panel = window.properties
    steps = v.form("sampler").editors["steps"].box
    steps.setValue(7)                                          # int
    assert params(window, "sampler")["steps"] == 7 and panel.editor("steps").box.value() == 7
    v.form("sampler").editors["cfg"].box.setValue(3.5)         # float
    name = v.form("scheduler").editors["name"].box             # choice
    name.setCurrentIndex(name.findData("ddim"))
    seed = v.form("noise").editors["seed"]                     # seed, typed
    seed.line.setText("1234")
    seed.line.textEdited.emit("1234")
    prefix = v.form("save").editors["filename_prefix"].line    # short string
    prefix.setText("shots/fox")
    prefix.textEdited.emit("shots/fox")
    text = v.form("positive").editors["text"]                  # long text: preview + editor
    assert text.open_editor(accept=lambda old: old + ", at dusk").endswith(", at dusk")
    assert text.preview.text().endswith("…") or text.preview.text().endswith("dusk")
    assert (params(window, "sampler")["cfg"], params(window, "scheduler")["name"], params(window, "noise")["seed"],
            params(window, "save")["filename_prefix"]) == (3.5, "ddim", 1234, "shots/fox")
    assert params(window, "positive")["text"].endswith(", at dusk")
    panel.editor("steps").box.setValue(9)                      # panel -> node
    assert steps.value() == 9
    for _ in range(7):
        d.undo_stack.undo()
    assert params(window, "sampler")["steps"] == 25 and steps.value() == 25
    assert params(window, "sampler")["cfg"] == 7.5 and v.form("scheduler").editors["name"].value() == "euler"
    assert not params(window, "positive")["text"].endswith(", at dusk")
    assert not d.dirty


def test_model_dropdowns_list_the_models_folder(window, settings, tmp_path):
    models = tmp_path / "models"
    for rel in ("checkpoints/a.safetensors", "checkpoints/sub/b.ckpt", "checkpoints/notes.txt",
                "checkpoints/tiny-sd/model_index.json", "checkpoints/tiny-sd/unet/x.safetensors",
                "Stable-diffusion/c.safetensors", "loras/style.safetensors", "Lora/old.safetensors"):
        (models / rel).parent.mkdir(parents=True, exist_ok=True)
        (models / rel).write_bytes(b"x")
    settings.models_dirs = [str(models)]
    window.doc.load(json.loads((WORKFLOWS / "lora.json").read_text()))
    ckpt = window.view.form("ckpt").editors["path"]
    ckpt.refresh()
    assert ckpt.choices() == ["a.safetensors", "c.safetensors", "sub/b.ckpt", "tiny-sd"]
    lora = window.view.form("lora").editors["path"]
    assert lora.refresh() == ["old.safetensors", "style.safetensors"]
    (models / "loras" / "new.safetensors").write_bytes(b"x")
    lora.refresh_button.click()
    assert "new.safetensors" in lora.choices()
    lora.combo.activated.emit(lora.choices().index("new.safetensors"))
    assert params(window, "lora")["path"] == "new.safetensors"
    window.view.select(["lora"])
    assert window.properties.editor("path").line.text() == "new.safetensors"
    assert window.properties.editor("path").browse.isVisible() or window.properties.editor("path").browse
    assert not hasattr(window.view.form("save").editors["filename_prefix"], "combo")


def test_missing_models_are_reported_once_when_a_workflow_opens(make_window, settings, tmp_path, qtbot):
    data = json.loads((WORKFLOWS / "lora.json").read_text())
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(data))
    w = make_window(file=str(path))
    qtbot.waitUntil(lambda: bool(w.warnings))   # the dialog comes once the window shows
    qtbot.wait(50)
    assert len(w.warnings) == 1
    title, text = w.warnings[0]
    assert title == "Missing models"
    models = str((tmp_path / "models").resolve())
    assert f"ckpt.path: file not found: {data['nodes']['ckpt']['params']['path']!r}" in text
    assert "lora.path: file not found" in text and f"{models}/checkpoints" in text and f"{models}/loras" in text
    assert w.view.state("ckpt") == "missing" and w.view.state("lora") == "missing"
    assert "file not found" in w.view.nodes["lora"].view.message_text()
    assert w.view.state("sampler") is None
    w.doc.set_param("lora", "strength_model", 0.5)     # an edit clears that node's mark only
    assert w.view.state("lora") is None and w.view.state("ckpt") == "missing"


def test_seed_after_run_increment_and_randomize(window, qtbot, tiny_dir, tmp_path):
    tiny_run_params(window, tiny_dir)
    window.view.select(["noise"])
    window.properties.seed_mode.box.setCurrentText("increment")
    assert window.doc.workflow.nodes["noise"].ui["seed_mode"] == "increment"
    assert window.view.form("noise").seed_mode.value() == "increment"      # node and panel agree
    result, error = run_and_wait(qtbot, window)
    assert error is None
    assert read_workflow(result.outputs[0])["nodes"]["noise"]["params"]["seed"] == 42
    assert params(window, "noise")["seed"] == 43
    window.view.form("noise").seed_mode.box.setCurrentText("randomize")
    window.seeds.rng = random.Random(7)
    expected = random.Random(7).randint(0, 2**32 - 1)
    result, error = run_and_wait(qtbot, window)
    assert read_workflow(result.outputs[0])["nodes"]["noise"]["params"]["seed"] == 43
    assert params(window, "noise")["seed"] == expected
    assert window.save_as(str(tmp_path / "s.json"))
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["nodes"]["noise"]["ui"]["seed_mode"] == "randomize"
    window.view.form("noise").seed_mode.box.setCurrentText("fixed")
    assert "seed_mode" not in window.doc.workflow.nodes["noise"].ui
    before = params(window, "noise")["seed"]
    window.seeds.after_submit()
    assert params(window, "noise")["seed"] == before


def test_palette_stays_on_screen_and_matches_fuzzily(window):
    avail = QGuiApplication.primaryScreen().availableGeometry()
    window.palette.popup(QPoint(avail.right() - 5, avail.bottom() - 5), (0.0, 0.0))
    assert avail.contains(window.palette.frameGeometry())
    window.palette.hide()
    window.palette.set_filter("smplr")
    assert window.palette.visible_types()[0] == "Sampler"
    window.palette.set_filter("lora")
    assert window.palette.visible_types() == ["LoadLoRA", "TrainLoRA"]


def test_node_ids_come_from_the_type_words(window):
    d = window.doc
    assert d.add_node("LoadLoRA") == "load_lora"
    assert d.add_node("LoadLoRA") == "load_lora_2"
    assert d.add_node("VAEDecode") == "vae_decode"
    assert d.add_node("ImageToMask") == "image_to_mask"


def test_groups_move_their_nodes_and_are_saved(window, make_window, tmp_path):
    d, v = window.doc, window.view
    window.view.select(["positive", "negative"])
    assert window.group_selected() == 0
    (group,) = d.groups()
    item = v.groups.items[0]
    assert sorted(item.members()) == ["negative", "positive"]
    before = {nid: d.pos(nid) for nid in ("positive", "negative", "sampler")}
    item.begin()
    item.drag_to(item.pos() + QPoint(100, 50))
    item.finish()
    for nid in ("positive", "negative"):
        assert d.pos(nid) == (before[nid][0] + 100, before[nid][1] + 50)
    assert d.pos("sampler") == before["sampler"]
    assert d.groups()[0]["rect"][:2] == [group["rect"][0] + 100, group["rect"][1] + 50]
    d.undo_stack.undo()                                   # one step: frame and nodes
    assert d.groups() == [group] and d.pos("positive") == before["positive"]
    d.undo_stack.redo()
    v.groups.rename(0, "Prompts")
    assert window.save_as(str(tmp_path / "g.json"))
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["ui"]["groups"][0]["title"] == "Prompts"
    other = make_window(file=str(tmp_path / "g.json"))
    assert [i.title.text() for i in other.view.groups.items] == ["Prompts"]
