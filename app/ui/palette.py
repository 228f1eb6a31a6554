"""Adding nodes: the searchable palette (Tab / right-click) and the draggable node list.

Both are generated from the catalog's node specs.
"""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import QEvent, QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QLineEdit, QListWidget, QListWidgetItem,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout)

from latentloom.app.ui.document import snake
from latentloom.app.ui.graph_view import MIME_NODE_TYPE

TYPE_ROLE = Qt.UserRole


def _subsequence(word, hay):
    it = iter(hay)
    return all(ch in it for ch in word)


def score(spec, text):
    """How well the filter matches a node (0: not at all). Each word must appear in the type or
    category: as written (best), as the start of a word of the type, or as letters in order
    (fuzzy: "smplr" finds Sampler)."""
    hay = f"{spec.type} {spec.category}".lower()
    words = snake(spec.type).split("_")
    total = 0
    for word in text.lower().split():
        if any(w.startswith(word) for w in words) or spec.type.lower().startswith(word):
            total += 4
        elif word in hay:
            total += 3
        elif _subsequence(word, spec.type.lower()):
            total += 1
        else:
            return 0
    return total or 1


def matches(spec, text):
    return score(spec, text) > 0


class NodePalette(QFrame):
    """A popup: type to filter node types by name or category, Enter adds the node."""
    chosen = Signal(str, object)  # node type, scene position (x, y) or None

    def __init__(self, catalog, parent=None):
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.catalog = catalog
        self.scene_pos = None
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search nodes by name or category…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(340, 360)
        self.search.textChanged.connect(self.set_filter)
        self.search.installEventFilter(self)
        self.list.itemActivated.connect(self._from_item)
        self.list.itemClicked.connect(self._from_item)

        self.set_filter("")

    def popup(self, global_pos=None, scene_pos=None):
        self.scene_pos = scene_pos
        self.search.clear()
        self.set_filter("")
        if global_pos is not None:
            self.move(self.placed(global_pos))
        self.show()
        if global_pos is not None:  # the frame may add a few pixels: keep all of it on the screen
            screen = self.screen()
            avail, frame = screen.availableGeometry(), self.frameGeometry()
            dx, dy = max(0, frame.right() - avail.right()), max(0, frame.bottom() - avail.bottom())
            if dx or dy:
                self.move(self.x() - dx, self.y() - dy)
        self.search.setFocus()

    def placed(self, pos):
        """Where the popup goes so that all of it is on the screen at pos."""
        screen = QGuiApplication.screenAt(pos) or self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return pos
        avail = screen.availableGeometry()
        if self.height() > avail.height():
            self.resize(self.width(), avail.height())
        x = max(avail.left(), min(pos.x(), avail.right() - self.width() + 1))
        y = max(avail.top(), min(pos.y(), avail.bottom() - self.height() + 1))
        return QPoint(x, y)

    def set_filter(self, text):
        if self.search.text() != text:
            self.search.setText(text)  # calls back here
            return
        ranked = [(score(spec, text), i, spec) for i, spec in enumerate(self.catalog)]
        ranked = sorted((r for r in ranked if r[0] > 0), key=lambda r: (-r[0], r[1]))
        self.list.clear()
        for _, _, spec in ranked:
            item = QListWidgetItem(f"{spec.type}    —  {spec.category}")
            item.setData(TYPE_ROLE, spec.type)
            item.setToolTip(spec.help)
            self.list.addItem(item)
        self.list.setCurrentRow(0 if ranked else -1)

    def visible_types(self):
        return [self.list.item(i).data(TYPE_ROLE) for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def activate(self, type=None):
        """Add the given (or the highlighted) node type; what Enter and a click do."""
        if type is None:
            item = self.list.currentItem()
            if item is None or item.isHidden():
                return None
            type = item.data(TYPE_ROLE)
        self.hide()
        self.chosen.emit(type, self.scene_pos)
        return type

    def _from_item(self, item):
        if self.isVisible():  # a click may report both "clicked" and "activated": add once
            self.activate(item.data(TYPE_ROLE))

    def eventFilter(self, obj, event):
        if obj is self.search and event.type() == QEvent.KeyPress:
            key = event.key()
            if key in (Qt.Key_Down, Qt.Key_Up, Qt.Key_PageDown, Qt.Key_PageUp):
                self._step(1 if key in (Qt.Key_Down, Qt.Key_PageDown) else -1)
                return True
            if key in (Qt.Key_Return, Qt.Key_Enter):
                self.activate()
                return True
            if key == Qt.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(obj, event)

    def _step(self, delta):
        rows = [i for i in range(self.list.count()) if not self.list.item(i).isHidden()]
        if not rows:
            return
        cur = self.list.currentRow()
        idx = rows.index(cur) if cur in rows else -1
        self.list.setCurrentRow(rows[max(0, min(len(rows) - 1, idx + delta))])


class NodeList(QTreeWidget):
    """Every node type by category; drag one onto the canvas, or double-click to add it."""
    chosen = Signal(str)

    def __init__(self, catalog, parent=None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragOnly)
        cats = {}
        for spec in catalog:
            parent_item = cats.get(spec.category)
            if parent_item is None:
                parent_item = cats[spec.category] = QTreeWidgetItem(self, [spec.category])
                parent_item.setFlags(Qt.ItemIsEnabled)
            item = QTreeWidgetItem(parent_item, [spec.type])
            item.setData(0, TYPE_ROLE, spec.type)
            item.setToolTip(0, spec.help)
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
        self.expandAll()
        self.itemDoubleClicked.connect(self._double_clicked)

    def types(self):
        out = []
        for i in range(self.topLevelItemCount()):
            cat = self.topLevelItem(i)
            out += [cat.child(j).data(0, TYPE_ROLE) for j in range(cat.childCount())]
        return out

    def mimeTypes(self):
        return [MIME_NODE_TYPE]

    def mimeData(self, items):
        types = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        mime = QMimeData()
        if types:
            mime.setData(MIME_NODE_TYPE, types[0].encode())
        return mime

    def _double_clicked(self, item, _column):
        if item.data(0, TYPE_ROLE):
            self.chosen.emit(item.data(0, TYPE_ROLE))
