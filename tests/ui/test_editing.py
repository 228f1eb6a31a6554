"""Editing in the real main window: opening, adding, wiring, params, undo, clipboard, files."""
import json

import pytest
from PySide6.QtCore import QPoint, Qt

from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS
from tests.ui.conftest import assert_view_matches, doc_links, view_links


def test_opens_with_the_default_txt2img_graph(window, txt2img):
    assert set(window.view.nodes) == set(txt2img["nodes"])
    assert window.windowTitle() == "Untitled (from txt2img.json) — Latent Loom"
    assert not window.doc.dirty
    for nid, raw in txt2img["nodes"].items():
        assert window.doc.pos(nid) == tuple(raw["ui"]["pos"])
        assert window.doc.workflow.nodes[nid].params.items() >= raw.get("params", {}).items()
    assert doc_links(window) == {(nid, p): tuple(link) for nid, raw in txt2img["nodes"].items()
                                 for p, link in raw.get("inputs", {}).items()}
    assert_view_matches(window)
    assert window.doc.problems() == []  # ready to run once a checkpoint exists


def test_open_shipped_workflow(window, txt2img):
    path = WORKFLOWS / "txt2img.json"
    assert window.open_path(path)
    assert window.doc.path == str(path)
    assert window.windowTitle() == "txt2img.json — Latent Loom"
    got = window.doc.to_json()
    for nid, raw in txt2img["nodes"].items():
        assert got["nodes"][nid]["type"] == raw["type"]
        assert got["nodes"][nid].get("inputs", {}) == raw.get("inputs", {})
        assert got["nodes"][nid]["ui"] == raw["ui"]
    assert str(path) in window.settings.recent


def test_palette_and_node_list_have_every_node_type(window):
    every = sorted(spec.type for spec in catalog)
    assert sorted(window.palette.visible_types()) == every
    assert sorted(window.node_list.types()) == every
    window.palette.set_filter("sampl")          # by name or by category ("sampling")
    assert set(window.palette.visible_types()) == {"Sampler", "Scheduler"}
    window.palette.set_filter("checkpoint")
    assert window.palette.visible_types() == ["LoadCheckpoint"]
    window.palette.set_filter("loaders")
    assert set(window.palette.visible_types()) == {s.type for s in catalog if s.category == "loaders"}


def _palette_add(window, type, pos):
    window.show_palette()
    assert window.palette.isVisible()
    window.palette.scene_pos = pos
    window.palette.set_filter(type)
    visible = window.palette.visible_types()
    window.palette.list.setCurrentRow(next(i for i in range(window.palette.list.count())
                                           if window.palette.list.item(i).data(Qt.UserRole) == type))
    assert type in visible
    before = set(window.doc.workflow.nodes)
    assert window.palette.activate() == type
    assert not window.palette.isVisible()
    (nid,) = set(window.doc.workflow.nodes) - before
    return nid


def _drag_link(window, src, out, dst, inp):
    """What the viewer emits when a pipe is dragged from an output onto an input."""
    a = window.view.port_item(src, out, output=True)
    b = window.view.port_item(dst, inp)
    window.view.viewer.connection_changed.emit([], [(a, b)])


def test_build_txt2img_from_an_empty_canvas(window, txt2img):
    window.new_document()
    assert window.doc.workflow.nodes == {} and window.view.nodes == {}
    ids = {}
    for name, raw in txt2img["nodes"].items():
        ids[name] = _palette_add(window, raw["type"], tuple(raw["ui"]["pos"]))
    for name, raw in txt2img["nodes"].items():
        for port, (src, out) in raw.get("inputs", {}).items():
            _drag_link(window, ids[src], out, ids[name], port)
        for param, value in raw.get("params", {}).items():
            window.doc.set_param(ids[name], param, value)
    assert window.doc.problems() == []
    got = window.doc.to_json()["nodes"]
    for name, raw in txt2img["nodes"].items():
        node = got[ids[name]]
        assert node["type"] == raw["type"]
        assert node["inputs"] == {p: [ids[s], o] for p, (s, o) in raw.get("inputs", {}).items()}
        assert node["ui"]["pos"] == raw["ui"]["pos"]
    assert_view_matches(window)
    assert window.doc.dirty and window.windowTitle().startswith("Untitled*")


def test_node_list_drop_adds_a_node(window):
    from PySide6.QtCore import QMimeData
    item = window.node_list.findItems("EmptyLatent", Qt.MatchExactly | Qt.MatchRecursive)[0]
    mime = window.node_list.mimeData([item])
    before = set(window.doc.workflow.nodes)
    window.view.view_dropped(mime, QPoint(100, 700))
    (nid,) = set(window.doc.workflow.nodes) - before
    assert window.doc.workflow.nodes[nid].type == "EmptyLatent"
    assert window.doc.pos(nid) == (100.0, 700.0)
    assert window.view.selected_ids() == [nid]
    assert isinstance(mime, QMimeData)


def test_type_mismatch_is_refused_with_a_status_message(window):
    before = window.doc.to_json()
    _drag_link(window, "ckpt", "clip", "sampler", "model")
    assert "CLIP" in window.statusBar().currentMessage() and "MODEL" in window.statusBar().currentMessage()
    assert window.doc.to_json() == before
    assert view_links(window)[("sampler", "model")] == ("ckpt", "model")
    _drag_link(window, "decode", "image", "decode", "latent")
    assert "type" in window.statusBar().currentMessage()
    _drag_link(window, "sampler", "latent", "sampler", "latent")
    assert "cycle" in window.statusBar().currentMessage()
    assert window.doc.to_json() == before
    assert_view_matches(window)


def test_an_input_takes_one_link_and_a_new_one_replaces_it(window):
    nid = window.doc.add_node("LatentNoise", pos=(-300, 600))
    _drag_link(window, nid, "noise", "sampler", "noise")
    assert window.doc.workflow.nodes["sampler"].inputs["noise"] == (nid, "noise")
    assert view_links(window)[("sampler", "noise")] == (nid, "noise")
    assert_view_matches(window)
    window.actions["undo"].trigger()
    assert window.doc.workflow.nodes["sampler"].inputs["noise"] == ("noise", "noise")
    assert_view_matches(window)


def test_disconnect_by_dragging_a_link_off(window):
    a = window.view.port_item("sampler", "noise")
    b = window.view.port_item("noise", "noise", output=True)
    window.view.viewer.connection_changed.emit([(a, b)], [])
    assert "noise" not in window.doc.workflow.nodes["sampler"].inputs
    assert_view_matches(window)
    window.actions["undo"].trigger()
    assert window.doc.workflow.nodes["sampler"].inputs["noise"] == ("noise", "noise")
    assert_view_matches(window)


def test_real_mouse_drag_between_ports(window, qtbot):
    """A pipe dragged with the mouse from an output onto an incompatible input is refused."""
    viewer = window.view.viewer
    window.view.frame()
    qtbot.wait(50)

    def at(item):
        return viewer.mapFromScene(item.sceneBoundingRect().center())

    src, dst = window.view.port_item("latent", "latent", output=True), window.view.port_item("decode", "vae")
    vp = viewer.viewport()
    qtbot.mousePress(vp, Qt.LeftButton, pos=at(src))
    qtbot.mouseMove(vp, pos=(at(src) + at(dst)) / 2)
    qtbot.mouseMove(vp, pos=at(dst))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=at(dst))
    assert "LATENT" in window.statusBar().currentMessage()
    assert window.doc.workflow.nodes["decode"].inputs["vae"] == ("ckpt", "vae")
    assert_view_matches(window)


def test_edit_params_through_their_widgets(window):
    window.view.select(["sampler"])
    panel = window.properties
    assert panel.node_id == "sampler"
    steps = panel.editor("steps").box
    assert (steps.minimum(), steps.maximum()) == (1, 1000)
    steps.setValue(7)
    assert window.doc.workflow.nodes["sampler"].params["steps"] == 7
    assert "steps: 7" in window.view.nodes["sampler"].view.summary_text()
    cfg = panel.editor("cfg").box
    assert cfg.singleStep() == 0.5 and cfg.maximum() == 100.0
    cfg.setValue(5.5)
    assert window.doc.workflow.nodes["sampler"].params["cfg"] == 5.5
    window.actions["undo"].trigger()
    assert window.doc.workflow.nodes["sampler"].params["cfg"] == 7.5 and cfg.value() == 7.5

    window.view.select(["scheduler"])
    combo = panel.editor("name").box
    assert [combo.itemText(i) for i in range(combo.count())] == list(catalog.get("Scheduler").param("name").choices)
    combo.setCurrentIndex(combo.findText("dpmpp_2m"))
    assert window.doc.workflow.nodes["scheduler"].params["name"] == "dpmpp_2m"

    window.view.select(["positive"])
    text = panel.editor("text").text
    text.setPlainText("a red fox\nin the snow")
    assert window.doc.workflow.nodes["positive"].params["text"] == "a red fox\nin the snow"

    window.view.select(["noise"])
    seed = panel.editor("seed")
    new = seed.randomize()
    assert window.doc.workflow.nodes["noise"].params["seed"] == new == int(seed.line.text())

    window.view.select(["ckpt"])
    path = panel.editor("path")
    assert path.roots()[0].as_posix().endswith("models/checkpoints")
    (path.roots()[0] / "sub").mkdir(parents=True)
    assert path.relative(path.roots()[0] / "sub" / "m.safetensors") == "sub/m.safetensors"
    path.line.setText("x")
    path.line.textEdited.emit("other.safetensors")
    assert window.doc.workflow.nodes["ckpt"].params["path"] == "other.safetensors"


def test_undo_redo_every_kind_of_edit(window):
    d, start = window.doc, window.doc.to_json()
    nid = window.add_node_at("LatentNoise", (-300, 620))
    d.set_param(nid, "seed", 7)
    window.view.view_nodes_moved({window.view.nodes[nid].view: (-300, 620)})  # no move: no command
    d.move({nid: (-250, 640)})
    _drag_link(window, nid, "noise", "sampler", "noise")
    d.disconnect("decode", "vae")
    window.view.select(["negative", "latent"])
    window.actions["delete"].trigger()
    window.view.select(["scheduler"])
    window.actions["duplicate"].trigger()
    end = d.to_json()
    assert end != start and d.undo_stack.count() == 7
    assert_view_matches(window)
    while d.undo_stack.canUndo():
        window.actions["undo"].trigger()
        assert_view_matches(window)
    assert d.to_json() == start and not d.dirty
    while d.undo_stack.canRedo():
        window.actions["redo"].trigger()
        assert_view_matches(window)
    assert d.to_json() == end


def test_moving_a_node_on_the_canvas_is_one_undo_step(window):
    item = window.view.nodes["noise"].view
    old = tuple(item.xy_pos)
    item.xy_pos = [old[0] + 30, old[1] + 20]
    window.view.view_nodes_moved({item: old})
    assert window.doc.pos("noise") == (old[0] + 30, old[1] + 20)
    window.actions["undo"].trigger()
    assert window.doc.pos("noise") == old and tuple(item.xy_pos) == old


def test_copy_paste_duplicate_select_all_delete(window):
    d = window.doc
    window.view.select(["ckpt", "positive", "sampler"])
    fragment = window.clipboard.copy()
    assert set(fragment["nodes"]) == {"ckpt", "positive", "sampler"}
    assert fragment["nodes"]["sampler"]["inputs"] == {"model": ["ckpt", "model"],
                                                       "positive": ["positive", "conditioning"]}
    new = window.clipboard.paste()
    assert len(new) == 3 and not set(new) & {"ckpt", "positive", "sampler"}
    by_type = {d.workflow.nodes[n].type: n for n in new}
    assert d.workflow.nodes[by_type["TextEncode"]].inputs == {"clip": (by_type["LoadCheckpoint"], "clip")}
    assert d.pos(by_type["Sampler"]) == (d.pos("sampler")[0] + 40, d.pos("sampler")[1] + 40)
    assert window.view.selected_ids() and set(window.view.selected_ids()) == set(new)
    again = window.clipboard.paste()
    assert not set(again) & set(new)
    window.view.select(["noise"])
    (dup,) = window.clipboard.duplicate()
    assert d.workflow.nodes[dup].params == d.workflow.nodes["noise"].params and dup != "noise"
    assert_view_matches(window)
    window.actions["select_all"].trigger()
    assert set(window.view.selected_ids()) == set(d.workflow.nodes)
    window.actions["delete"].trigger()
    assert d.workflow.nodes == {} and window.view.nodes == {}
    window.actions["undo"].trigger()
    assert len(d.workflow.nodes) == 9 + 3 + 3 + 1
    assert_view_matches(window)


def test_frame_all_and_help_lists_shortcuts(window):
    window.view.viewer.set_scene_rect([5000, 5000, 100, 100])
    window.actions["frame_all"].trigger()
    rect = window.view.viewer.sceneRect()
    assert rect.contains(window.view.items_rect())
    keys = dict((text, keys) for keys, text in window.shortcut_rows())
    assert "Ctrl+Return" in keys["Run"] and "Ctrl+Z" in keys["Undo"]
    assert keys["Frame All"].startswith("F") and "Del" in keys["Delete"]
    assert any("Tab" in k for k in keys.values()) or any("Tab" in k for k, _ in window.shortcut_rows())


def test_save_reopen_and_compare(window, make_window, tmp_path, settings):
    d = window.doc
    d.set_param("positive", "text", "a lighthouse, ünïcode ✓")
    d.move({"save": (700.5, 20)})
    d.workflow.ui["notes"] = {"keep": ["me"]}  # unknown top-level ui keys survive
    assert window.windowTitle().startswith("Untitled (from txt2img.json)*")
    path = tmp_path / "mine.json"
    assert window.save_as(str(path))
    assert window.windowTitle() == "mine.json — Latent Loom" and not d.dirty
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["ui"]["notes"] == {"keep": ["me"]} and "rect" in saved["ui"]["editor"]
    assert saved["nodes"]["save"]["ui"]["pos"] == [700.5, 20.0]
    other = make_window(file=str(path))
    assert other.doc.to_json() == d.to_json() == saved
    x, y, w, h = saved["ui"]["editor"]["rect"]  # the view keeps its centre (its size follows the window)
    rx, ry, rw, rh = other.view.viewer.scene_rect()
    assert (rx + rw / 2, ry + rh / 2) == pytest.approx((x + w / 2, y + h / 2), abs=3)
    from latentloom.app.cli import main
    assert main(["validate", str(path), "--set", "ckpt.path=stable-diffusion-v1-5/stable-diffusion-v1-5"]) == 0
    assert settings.recent[0] == str(path)


def test_unsaved_work_is_protected(window):
    window.doc.set_param("sampler", "steps", 3)
    assert window.windowTitle().endswith("* — Latent Loom")
    window.ask_unsaved = lambda: "cancel"
    assert not window.new_document()
    assert window.doc.workflow.nodes["sampler"].params["steps"] == 3
    assert not window.open_path(WORKFLOWS / "txt2img.json")
    asked = []
    window.ask_unsaved = lambda: asked.append(1) or "discard"
    assert window.new_document() and asked and window.doc.workflow.nodes == {}
    assert not window.doc.dirty and "*" not in window.windowTitle()


def test_nodes_without_positions_are_laid_out(window, txt2img):
    for raw in txt2img["nodes"].values():
        raw.pop("ui")
    window.doc.load(txt2img)
    rects = {nid: window.view.nodes[nid].view.sceneBoundingRect() for nid in window.view.nodes}
    assert all(window.doc.pos(nid) is not None for nid in rects)
    for a in rects:
        for b in rects:
            assert a == b or not rects[a].intersects(rects[b]), (a, b)
    xs = {nid: window.doc.pos(nid)[0] for nid in rects}
    assert xs["ckpt"] < xs["positive"] < xs["sampler"] < xs["decode"] < xs["save"]


def test_open_errors_are_reported_and_nothing_is_lost(window, tmp_path):
    before = window.doc.to_json()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "latentloom.workflow", "version": 1,
                               "nodes": {"x": {"type": "NoSuchNode"}}}))
    assert not window.open_path(bad)
    assert "NoSuchNode" in window.log_view.toPlainText()
    assert window.doc.to_json() == before


def test_settings_persist_and_cli_values_win_for_the_session(settings):
    from PySide6.QtCore import QSettings
    from latentloom.app.ui.settings import Settings
    settings.models_dirs = ["/m1"]
    settings.device, settings.dtype = "cpu", "fp32"
    again = Settings(QSettings(settings.q.fileName(), QSettings.IniFormat))
    assert (again.models_dirs, again.device, again.dtype) == (["/m1"], "cpu", "fp32")
    again.apply_cli(models=["models"], out="output", device="auto")  # the CLI's defaults: no change
    assert again.models_dirs == ["/m1"] and again.device == "cpu"
    again.apply_cli(models=["/other"], out="/o", device="cuda")
    assert (again.models_dirs, again.output_dir, again.device) == (["/other"], "/o", "cuda")
    assert Settings(QSettings(settings.q.fileName(), QSettings.IniFormat)).models_dirs == ["/m1"]


def test_new_loaders_get_the_dtype_setting(window, settings):
    settings.dtype = "fp32"
    window.apply_settings()
    nid = window.add_node_at("LoadCheckpoint", (0, 900))
    assert window.doc.workflow.nodes[nid].params["dtype"] == "fp32"


def test_tab_opens_the_palette(window, qtbot):
    viewer = window.view.viewer
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key_Tab)
    assert window.palette.isVisible()
    qtbot.keyClicks(window.palette.search, "vae dec")
    assert window.palette.visible_types() == ["VAEDecode"]
    qtbot.keyClick(window.palette.search, Qt.Key_Return)
    assert not window.palette.isVisible()
    assert sum(n.type == "VAEDecode" for n in window.doc.workflow.nodes.values()) == 2


def test_keyboard_delete_and_undo_on_the_canvas(window, qtbot):
    window.activateWindow()
    viewer = window.view.viewer
    viewer.setFocus()
    window.view.select(["noise"])
    qtbot.keyClick(viewer, Qt.Key_Delete)
    assert "noise" not in window.doc.workflow.nodes
    qtbot.keyClick(viewer, Qt.Key_Z, Qt.ControlModifier)
    assert "noise" in window.doc.workflow.nodes
    assert_view_matches(window)


def test_latentloom_edit_opens_the_editor(qtbot, tmp_path):
    """`latentloom edit FILE` goes through app.ui.main.run_editor and returns its exit code."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    from latentloom.app.launcher import main
    from latentloom.app.ui.window import MainWindow
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path))
    seen = []

    def close_it():
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        if not boxes:  # the missing-model report comes up as the window shows
            QTimer.singleShot(100, close_it)
            return
        seen.extend(b.windowTitle() for b in boxes)
        for b in boxes:
            b.reject()
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen.extend((w.windowTitle(), sorted(w.view.nodes)) for w in wins)
        for w in wins:
            w.close()
    QTimer.singleShot(300, close_it)
    assert main(["edit", str(WORKFLOWS / "txt2img.json"), "--models", str(tmp_path / "m")]) == 0
    assert seen[0] == "Missing models"
    assert seen[1][0] == "txt2img.json — Latent Loom" and "sampler" in seen[1][1]
