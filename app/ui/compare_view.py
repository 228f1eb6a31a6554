"""Two images compared: side by side, or one over the other with a slider to drag."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPen, QColor
from PySide6.QtWidgets import QWidget

MODES = ("side", "slider")


def fit(image, box):
    """The largest rect of the image's aspect inside box, centred."""
    if image is None or image.isNull() or box.width() <= 0 or box.height() <= 0:
        return QRectF()
    scale = min(box.width() / image.width(), box.height() / image.height())
    w, h = image.width() * scale, image.height() * scale
    return QRectF(box.x() + (box.width() - w) / 2, box.y() + (box.height() - h) / 2, w, h)


class CompareView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.a = self.b = None
        self.mode = "side"
        self.split = 0.5  # slider position, 0..1 of the image's width
        self.setMinimumSize(80, 80)
        self.setMouseTracking(False)

    def set_images(self, a, b):
        self.a, self.b = a, b
        self.update()

    def set_mode(self, mode):
        if mode in MODES:
            self.mode = mode
            self.update()

    def rects(self):
        """Where A and B are drawn."""
        r = QRectF(self.rect())
        if self.mode == "side":
            half = r.width() / 2
            return fit(self.a, QRectF(r.x(), r.y(), half - 2, r.height())), \
                fit(self.b, QRectF(r.x() + half + 2, r.y(), half - 2, r.height()))
        box = fit(self.a, r)
        return box, box

    def _drag(self, event):
        if self.mode == "slider":
            box = self.rects()[0]
            if box.width() > 0:
                self.split = min(1.0, max(0.0, (event.position().x() - box.x()) / box.width()))
                self.update()

    def mousePressEvent(self, event):
        self._drag(event)

    def mouseMoveEvent(self, event):
        self._drag(event)

    def paintEvent(self, _event):
        p = QPainter(self)
        p.setRenderHint(QPainter.SmoothPixmapTransform)
        p.fillRect(self.rect(), self.palette().base())
        ra, rb = self.rects()
        if self.a is not None and not ra.isEmpty():
            p.drawImage(ra, self.a)
        if self.b is not None and not rb.isEmpty():
            if self.mode == "side":
                p.drawImage(rb, self.b)
            else:
                x = rb.x() + rb.width() * self.split
                src = QRectF(self.b.width() * self.split, 0, self.b.width() * (1 - self.split), self.b.height())
                p.drawImage(QRectF(x, rb.y(), rb.right() - x, rb.height()), self.b, src)
                p.setPen(QPen(QColor(255, 255, 255), 2))
                p.drawLine(int(x), int(rb.top()), int(x), int(rb.bottom()))
        p.end()
