"""The sweep panel: axes from "Sweep this…", values, swap, cell count, undo, the saved block, and a
tiny-model sweep that fills the contact sheet from the session's events."""
import json

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QToolButton

from latentloom.app.session.sweeping import SweepResult
from latentloom.app.ui.image_panel import qimage_to_rgb
from tests.ui.conftest import run_and_wait, tiny_run_params


def sweep_this(window, nid, name):
    window.view.select([nid])
    window.properties.findChild(QToolButton, f"sweep:{name}").click()


def test_axes_from_params_values_swap_count_undo_and_save(window, make_window, tmp_path):
    d, panel = window.doc, window.sweep
    sweep_this(window, "sampler", "cfg")
    assert d.workflow.sweep == {"axes": [{"params": ["sampler.cfg"], "values": [7.5]}]}
    assert panel.rows[0][1].text() == "7.5"
    panel.rows[0][1].setText("1, 3, 5, 7.5, 10, 15")
    panel.rows[0][1].editingFinished.emit()
    sweep_this(window, "noise", "seed")
    assert d.workflow.sweep["axes"] == [{"params": ["sampler.cfg"], "values": [1, 3, 5, 7.5, 10, 15]},
                                        {"params": ["noise.seed"], "values": [42, 43, 44, 45]}]
    assert panel.count.text() == "6 × 4 = 24 cells"
    assert panel.set_values(1, "1..3") and panel.count.text() == "6 × 3 = 18 cells"
    assert panel.set_values(0, "0.2:1.0:0.4")
    assert d.workflow.sweep["axes"][0]["values"] == [0.2, 0.6, 1.0]
    assert not panel.set_values(0, "1:5:0") and "step" in panel.error.text()   # shown, not saved
    assert d.workflow.sweep["axes"][0]["values"] == [0.2, 0.6, 1.0]
    sweep_this(window, "noise", "seed")                                         # no axis twice
    assert len(d.workflow.sweep["axes"]) == 2

    panel.swap_button.click()
    assert [a["params"] for a in d.workflow.sweep["axes"]] == [["noise.seed"], ["sampler.cfg"]]
    assert panel.rows[0][0].text() == "noise.seed"
    d.undo_stack.undo()
    assert [a["params"] for a in d.workflow.sweep["axes"]] == [["sampler.cfg"], ["noise.seed"]]
    d.undo_stack.redo()

    path = tmp_path / "swept.json"
    assert window.save_as(str(path))
    saved = json.loads(path.read_text())
    assert saved["sweep"] == {"axes": [{"params": ["noise.seed"], "values": [1, 2, 3]},
                                       {"params": ["sampler.cfg"], "values": [0.2, 0.6, 1.0]}]}
    other = make_window(file=str(path))
    assert other.sweep.count.text() == "3 × 3 = 9 cells"
    panel.clear_button.click()
    assert d.workflow.sweep is None and panel.count.text() == "" and panel.hint.isVisibleTo(panel)
    d.undo_stack.undo()
    assert len(d.workflow.sweep["axes"]) == 2


def test_bad_sweep_values_are_refused_before_running(window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir)
    window.doc.set_sweep({"axes": [{"params": ["sampler.steps"], "values": [2, -1]}]})
    result, error = run_and_wait(qtbot, window)
    assert result is None and window.view.state("sampler") == "invalid"
    assert "sweep axis 0" in window.view.nodes["sampler"].view.message_text()


def test_a_tiny_sweep_fills_the_sheet_and_a_cell_gives_its_values(window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir)
    sweep_this(window, "sampler", "cfg")
    window.sweep.set_values(0, "1, 7.5")
    sweep_this(window, "noise", "seed")
    window.sweep.set_values(1, "1, 2")
    filled = []
    window.runner.event.connect(lambda e: filled.append(len(window.images.sheet.filled())))
    result, error = run_and_wait(qtbot, window)
    assert error is None and isinstance(result, SweepResult) and result.status == "ok"
    sheet = window.images.sheet
    assert sheet.filled() == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    assert sorted(set(filled)) == [0, 1, 2, 3, 4]   # it filled in cell by cell while running
    assert window.images.stack.currentWidget() is sheet
    assert sheet.columns == ["1", "7.5"] and sheet.rows == ["1", "2"]
    for cell in result.cells:
        shown = sheet.cells[cell.cell.index]["image"]
        assert np.array_equal(qimage_to_rgb(shown), np.array(Image.open(cell.files[0]).convert("RGB")))
    assert len(result.sheets) == 1 and window.history.entries()[0]["kind"] == "sweep"

    rect = sheet.cell_rect(1, 0)                     # click the cfg 7.5, seed 1 cell
    qtbot.mouseClick(sheet, Qt.LeftButton, pos=QPoint(int(rect.center().x()), int(rect.center().y())))
    cell = next(c for c in result.cells if c.cell.index == (1, 0, 0))
    assert window.images.current_path == cell.files[0]
    assert window.images.use_button.isVisibleTo(window.images)
    window.doc.set_param("noise", "seed", 99)
    window.images.use_button.click()
    assert window.doc.workflow.nodes["sampler"].params["cfg"] == 7.5
    assert window.doc.workflow.nodes["noise"].params["seed"] == 1
    window.doc.undo_stack.undo()                      # one step
    assert window.doc.workflow.nodes["noise"].params["seed"] == 99
