"""Output images as they are produced, the live sampler preview, zoom, save as and copy."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import shutil
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QApplication, QFileDialog, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu, QStackedWidget, QToolButton, QVBoxLayout,
                               QWidget)

from latentloom.app.ui.compare_view import CompareView
from latentloom.app.ui.sheet_view import SheetView

PATH_ROLE = Qt.UserRole
MAX_THUMBS = 200


def pil_to_qimage(im):
    im = im.convert("RGBA")
    data = im.tobytes("raw", "RGBA")
    return QImage(data, im.width, im.height, 4 * im.width, QImage.Format_RGBA8888).copy()


def qimage_to_rgb(qimage):
    """(height, width, 3) uint8 numpy array of a QImage (for comparisons)."""
    import numpy as np
    img = qimage.convertToFormat(QImage.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, :w * 3].reshape(h, w, 3).copy()


class ImageView(QGraphicsView):
    """A zoomable, pannable image."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.FastTransformation)
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setBackgroundBrush(Qt.darkGray)
        self.fit_mode = True

    def set_image(self, qimage):
        self.item.setPixmap(QPixmap.fromImage(qimage))
        self.scene().setSceneRect(self.item.boundingRect())
        if self.fit_mode:
            self.fit()

    def zoom(self, factor):
        self.fit_mode = False
        self.scale(factor, factor)

    def actual_size(self):
        self.fit_mode = False
        self.resetTransform()

    def fit(self):
        self.fit_mode = True
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.KeepAspectRatio)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.fit_mode:
            self.fit()

    def wheelEvent(self, event):
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)


class ImagePanel(QWidget):
    message = Signal(str)
    use_values = Signal(dict)   # {"node.param": value} of the sweep cell shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.current_image = None  # QImage shown now
        self.current_path = None   # its file, None for a preview
        self.cell = None           # the sweep cell shown, if any
        self.view = ImageView()
        self.sheet = SheetView()
        self.sheet.cell_clicked.connect(self.show_cell)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.sheet)
        self.compare_view = CompareView()
        self.stack.addWidget(self.compare_view)
        self.previous_path = None   # the image shown before the current one (compared with it)
        self.caption = QLabel("No images yet: run the workflow (Ctrl+Enter).")
        self.caption.setStyleSheet("color: gray;")
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.IconMode)
        self.thumbs.setFlow(QListWidget.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setIconSize(QSize(56, 56))
        self.thumbs.setFixedHeight(84)
        self.thumbs.currentItemChanged.connect(self._thumb_chosen)
        bar = QHBoxLayout()
        for text, tip, slot in (("−", "Zoom out", lambda: self.view.zoom(0.8)),
                                ("+", "Zoom in", lambda: self.view.zoom(1.25)),
                                ("Fit", "Fit in the panel", self.view.fit),
                                ("1:1", "Actual size", self.view.actual_size),
                                ("Save as…", "Save the image as a PNG", self.save_as),
                                ("Copy", "Copy the image to the clipboard", self.copy)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
        bar.addStretch(1)
        self.sheet_button = QToolButton()
        self.sheet_button.setText("Sheet")
        self.sheet_button.setToolTip("The sweep's contact sheet")
        self.sheet_button.setCheckable(True)
        self.sheet_button.setEnabled(False)
        self.sheet_button.toggled.connect(lambda on: self.show_sheet() if on else self.show_image_page())
        self.use_button = QToolButton()
        self.use_button.setText("Use these values")
        self.use_button.setToolTip("Set this cell's sweep values on the graph")
        self.use_button.setVisible(False)
        self.use_button.clicked.connect(lambda: self.cell and self.use_values.emit(dict(self.cell["values"])))
        self.compare_button = QToolButton()
        self.compare_button.setText("Compare")
        self.compare_button.setToolTip("Compare this image with the one shown before it")
        self.compare_button.setPopupMode(QToolButton.MenuButtonPopup)
        menu = QMenu(self.compare_button)
        menu.addAction("Side by side", lambda: self.compare(mode="side"))
        menu.addAction("Slider", lambda: self.compare(mode="slider"))
        self.compare_button.setMenu(menu)
        self.compare_button.clicked.connect(lambda: self.compare())
        bar.addWidget(self.compare_button)
        bar.addWidget(self.use_button)
        bar.addWidget(self.sheet_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(2, 2, 2, 2)
        col.addLayout(bar)
        col.addWidget(self.stack, 1)
        col.addWidget(self.caption)
        col.addWidget(self.thumbs)

    def show_sheet(self):
        self.sheet_button.setEnabled(True)
        with QSignalBlocker(self.sheet_button):
            self.sheet_button.setChecked(True)
        self.stack.setCurrentWidget(self.sheet)
        self.caption.setText("Contact sheet: click a cell to see its image")

    def show_image_page(self):
        with QSignalBlocker(self.sheet_button):
            self.sheet_button.setChecked(False)
        self.stack.setCurrentWidget(self.view)

    def compare(self, a=None, b=None, mode=None):
        """Compare two image files (default: the one shown before and the current one)."""
        a = a or self.previous_path
        b = b or self.current_path
        if not a or not b:
            self.message.emit("Show two images one after the other to compare them")
            return False
        self.compare_view.set_images(QImage(str(a)), QImage(str(b)))
        self.compare_view.set_mode(mode or self.compare_view.mode)
        self.stack.setCurrentWidget(self.compare_view)
        self.caption.setText(f"{Path(a).name}  |  {Path(b).name}")
        return True

    def show_cell(self, cell):
        """A clicked sweep cell: its image, and "Use these values"."""
        pngs = [f for f in cell["files"] if str(f).lower().endswith(".png")]
        if pngs:
            self.show_path(pngs[0])
        self.cell = cell
        self.use_button.setVisible(True)
        values = ", ".join(f"{k} = {v!r}" for k, v in cell["values"].items())
        self.caption.setText(f"Cell {values}" + ("" if pngs else f" ({cell['status']})"))

    def show_preview(self, pil_image, caption="preview"):
        self.show_image_page()
        self.current_image, self.current_path = pil_to_qimage(pil_image), None
        self.view.set_image(self.current_image)
        self.caption.setText(caption)

    def add_output(self, path, follow=True):
        """Add an output PNG to the strip and show it (follow); ignores a path already there."""
        path = str(path)
        for i in range(self.thumbs.count()):
            if self.thumbs.item(i).data(PATH_ROLE) == path:
                return False
        image = QImage(path)
        if image.isNull():
            return False
        item = QListWidgetItem(QIcon(QPixmap.fromImage(image.scaled(
            56, 56, Qt.KeepAspectRatio, Qt.SmoothTransformation))), "")
        item.setData(PATH_ROLE, path)
        item.setToolTip(path)
        self.thumbs.addItem(item)  # oldest on the left, newest on the right
        while self.thumbs.count() > MAX_THUMBS:
            self.thumbs.takeItem(0)
        if follow:
            self.thumbs.setCurrentItem(item)  # shows it, highlighted
            self.thumbs.scrollToItem(item)
        return True

    def show_path(self, path):
        """Show an image of the strip (adding it when it is not there)."""
        path = str(path)
        for i in range(self.thumbs.count()):
            if self.thumbs.item(i).data(PATH_ROLE) == path:
                self.thumbs.setCurrentRow(i)
                self._thumb_chosen(self.thumbs.item(i))
                return True
        return self.add_output(path)

    def outputs(self):
        return [self.thumbs.item(i).data(PATH_ROLE) for i in range(self.thumbs.count())]

    def _thumb_chosen(self, item, _prev=None):
        if item is None:
            return
        path = item.data(PATH_ROLE)
        if self.current_path and self.current_path != path:
            self.previous_path = self.current_path
        self.show_image_page()
        self.cell = None
        self.use_button.setVisible(False)
        self.current_image, self.current_path = QImage(path), path
        self.view.set_image(self.current_image)
        self.caption.setText(f"{Path(path).name}  ({self.current_image.width()}×{self.current_image.height()})")

    def save_as(self, target=None):
        if self.current_image is None:
            return None
        if target is None:
            name = Path(self.current_path).name if self.current_path else "preview.png"
            target, _ = QFileDialog.getSaveFileName(self, "Save image as", name, "PNG images (*.png)")
            if not target:
                return None
        from latentloom.app.engine.outputs import write_file
        if self.current_path:  # keep the embedded workflow: copy the file as it is
            write_file(target, lambda tmp: shutil.copyfile(self.current_path, tmp))
        else:
            write_file(target, lambda tmp: self.current_image.save(str(tmp), "PNG"))
        self.message.emit(f"Saved {target}")
        return target

    def copy(self):
        if self.current_image is not None:
            QApplication.clipboard().setImage(self.current_image)
            self.message.emit("Image copied to the clipboard")
