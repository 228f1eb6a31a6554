"""A sweep's contact sheet as it fills in, built from the session's CellFinished events.

Cells sit on a grid (axis 0: columns, axis 1: rows, axis 2: pages) with the value labels on
the top and left edges; a click picks a cell."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QWidget

PAD, TOP, LEFT = 6, 26, 110
EMPTY, FAILED = QColor(52, 53, 58), QColor(96, 96, 96)


class SheetView(QWidget):
    cell_clicked = Signal(object)   # the cell: {"grid", "values", "files", "status"}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.columns, self.rows, self.pages = [], [], []
        self.titles = ("", "")
        self.page = 0
        self.cells = {}      # (col, row, page) -> cell dict (with "image": QImage or None)
        self.files = {}      # page -> contact sheet file
        self.setMinimumSize(120, 120)

    def begin(self, axes):
        """A new sweep: its axes (app.core.sweep.Axis) give the grid."""
        labels = [[a.value_label(i) for i in range(len(a.values))] for a in axes]
        self.columns = labels[0] if labels else [""]
        self.rows = labels[1] if len(labels) > 1 else [""]
        self.pages = labels[2] if len(labels) > 2 else [""]
        self.titles = (axes[0].label if axes else "", axes[1].label if len(axes) > 1 else "")
        self.page_title = axes[2].label if len(axes) > 2 else ""
        self.page, self.cells, self.files = 0, {}, {}
        self.update()

    def add_cell(self, e):
        """A CellFinished event: its first PNG goes into the grid."""
        grid = tuple(e.grid) if e.grid else (0, 0, 0)
        image = None
        for f in e.files:
            if str(f).lower().endswith(".png"):
                image = QImage(str(f))
                break
        self.cells[grid] = {"grid": grid, "values": dict(e.values), "files": list(e.files),
                            "status": e.status, "image": None if image is None or image.isNull() else image}
        self.page = grid[2]
        self.update()

    def set_sheet_file(self, page, path):
        self.files[page] = path

    def filled(self):
        return sorted(g for g, c in self.cells.items() if c["image"] is not None)

    # --- geometry ---------------------------------------------------------------------
    def _geometry(self):
        ncol, nrow = max(1, len(self.columns)), max(1, len(self.rows))
        left = LEFT if self.titles[1] else PAD
        top = TOP * (3 if self.pages[1:] else 2)
        side = min((self.width() - left - PAD) / ncol, (self.height() - top - PAD) / nrow) - PAD
        return max(8.0, side), left, top

    def cell_rect(self, col, row):
        side, left, top = self._geometry()
        return QRectF(left + col * (side + PAD), top + row * (side + PAD), side, side)

    def cell_at(self, x, y):
        for c in range(len(self.columns)):
            for r in range(len(self.rows)):
                if self.cell_rect(c, r).contains(x, y):
                    return (c, r, self.page)
        return None

    # --- events -----------------------------------------------------------------------
    def mousePressEvent(self, event):
        grid = self.cell_at(event.position().x(), event.position().y())
        if grid is not None and grid in self.cells:
            self.cell_clicked.emit(self.cells[grid])

    def paintEvent(self, _event):
        p = QPainter(self)
        p.setRenderHint(QPainter.SmoothPixmapTransform)
        p.fillRect(self.rect(), self.palette().base())
        if not self.columns:
            p.setPen(self.palette().placeholderText().color())
            p.drawText(self.rect(), Qt.AlignCenter, "No sweep has run yet.")
            return
        side, left, top = self._geometry()
        font = QFont(self.font())
        font.setPixelSize(12)
        p.setFont(font)
        p.setPen(self.palette().text().color())
        y = 0
        if self.pages[1:]:
            p.drawText(QRect(0, 0, self.width(), TOP), Qt.AlignCenter,
                       f"{self.page_title} = {self.pages[self.page]}  (page {self.page + 1}/{len(self.pages)})")
            y = TOP
        p.drawText(QRect(int(left), y, self.width() - int(left), TOP), Qt.AlignCenter, self.titles[0])
        for c, label in enumerate(self.columns):
            r = self.cell_rect(c, 0)
            p.drawText(QRectF(r.x(), y + TOP, r.width(), TOP), Qt.AlignCenter | Qt.TextSingleLine, label)
        if self.titles[1]:
            for row, label in enumerate(self.rows):
                r = self.cell_rect(0, row)
                p.drawText(QRectF(2, r.y(), left - 6, r.height()), Qt.AlignVCenter | Qt.AlignRight | Qt.TextWordWrap,
                           label)
            p.drawText(QRect(2, y + TOP, int(left) - 6, TOP), Qt.AlignLeft | Qt.AlignVCenter, self.titles[1])
        for c in range(len(self.columns)):
            for row in range(len(self.rows)):
                rect = self.cell_rect(c, row)
                cell = self.cells.get((c, row, self.page))
                if cell and cell["image"] is not None:
                    p.drawImage(rect, cell["image"])
                else:
                    p.fillRect(rect, FAILED if cell else EMPTY)
                    if cell:
                        p.drawText(rect, Qt.AlignCenter, "failed" if cell["status"] == "failed" else cell["status"])
        p.end()
