"""Window and startup: the first size, remembered geometry and docks, F1 help, no ambiguous
shortcut, image comparison, the thumbnail strip, and the no-display message."""
import os
import subprocess
import sys
from collections import Counter

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication

from latentloom.app.launcher import NO_DISPLAY
from latentloom.app.ui.image_panel import qimage_to_rgb


def test_first_size_fits_the_screen(window):
    avail = QGuiApplication.primaryScreen().availableGeometry()
    assert window.width() <= avail.width() and window.height() <= avail.height()


def test_geometry_and_docks_are_remembered(make_window, settings):
    w = make_window(load_default=False)
    assert w.history_dock.isVisible()
    w.history_dock.hide()
    w.resize(w.width() - 30, w.height() - 20)
    size = (w.width(), w.height())
    w.close()
    again = make_window(load_default=False)
    assert not again.history_dock.isVisible() and again.log_dock.isVisible()
    assert (again.width(), again.height()) == size


def test_f1_opens_the_help_and_no_shortcut_is_ambiguous(window, qtbot):
    qtbot.keyClick(window, Qt.Key_F1)
    assert window.help_dialog.isVisible()
    assert "Run" in window.help_dialog.keys.toPlainText()
    assert window.help_dialog.guide.toPlainText().strip()
    window.help_dialog.close()
    seen = Counter()
    for act in window.findChildren(QAction):
        scope = id(act.parent()) if act.shortcutContext() != Qt.ApplicationShortcut else 0
        for key in act.shortcuts():
            seen[(key.toString(), act.shortcutContext(), scope)] += 1
    assert [k for k, n in seen.items() if n > 1] == []


def _png(path, color):
    Image.new("RGB", (32, 32), color).save(path)
    return str(path)


def test_compare_two_images_and_the_strip_follows_the_newest(window, tmp_path):
    images = window.images
    paths = [_png(tmp_path / f"{i}.png", c) for i, c in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)])]
    for p in paths:
        images.add_output(p)
        assert images.current_path == p and images.thumbs.currentRow() == images.thumbs.count() - 1
    assert images.outputs() == paths
    images.show_path(paths[0])
    images.show_path(paths[1])
    assert images.compare(mode="slider")
    view = images.compare_view
    assert images.stack.currentWidget() is view and view.mode == "slider"
    view.resize(200, 100)
    shot = qimage_to_rgb(view.grab().toImage())
    ra, _ = view.rects()
    y = int(ra.center().y())
    assert tuple(shot[y, int(ra.left()) + 3]) == (255, 0, 0)      # A on the left of the slider
    assert tuple(shot[y, int(ra.right()) - 3]) == (0, 0, 255)     # B on the right
    view.set_mode("side")
    shot = qimage_to_rgb(view.grab().toImage())
    ra, rb = view.rects()
    assert tuple(shot[int(ra.center().y()), int(ra.center().x())]) == (255, 0, 0)
    assert tuple(shot[int(rb.center().y()), int(rb.center().x())]) == (0, 0, 255)
    assert np.array_equal(qimage_to_rgb(view.b), np.array(Image.open(paths[1])))


def test_no_display_exits_2_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "latentloom.app"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == NO_DISPLAY
    assert "no display found: use `latentloom run …` for headless work, or set QT_QPA_PLATFORM=offscreen" \
        in proc.stderr
