"""Groups: titled frames on the canvas that move the nodes inside them.

They live in the workflow's top-level UI data ("groups": [{"title", "rect": [x, y, w, h]}]), so
they are saved in the file; every change (add, move, rename, remove) is one Document edit."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsSimpleTextItem, QInputDialog

PAD, TITLE_H = 24.0, 30.0
FILL, EDGE = QColor(120, 130, 160, 38), QColor(150, 160, 190, 150)


class GroupItem(QGraphicsRectItem):
    def __init__(self, groups, index, data):
        x, y, w, h = data["rect"]
        super().__init__(0, 0, w, h)
        self.groups, self.index = groups, index
        self.setPos(x, y)
        self.setZValue(-100)
        self.setBrush(QBrush(FILL))
        self.setPen(QPen(EDGE, 1.5))
        self.setFlag(QGraphicsItem.ItemIsMovable, True)
        self.title = QGraphicsSimpleTextItem(str(data.get("title", "Group")), self)
        font = QFont()
        font.setPixelSize(15)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setBrush(QColor(225, 228, 236))
        self.title.setPos(8, 6)
        self._start = None

    def members(self):
        """Engine ids of the nodes inside the frame."""
        frame = self.sceneBoundingRect()
        return [nid for nid, node in self.groups.view.nodes.items()
                if frame.contains(node.view.sceneBoundingRect().center())]

    def begin(self):
        """A drag starts: remember the frame's and its nodes' places."""
        self._start = (QPointF(self.pos()), {nid: tuple(self.groups.view.nodes[nid].view.xy_pos)
                                               for nid in self.members()})

    def mousePressEvent(self, event):
        self.begin()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        super().mouseMoveEvent(event)
        if self._start:
            self.drag_to(self.pos())

    def drag_to(self, pos):
        """Move the frame and its nodes (the view only) while dragging."""
        start, nodes = self._start
        self.setPos(pos)
        dx, dy = pos.x() - start.x(), pos.y() - start.y()
        for nid, (x, y) in nodes.items():
            self.groups.view.nodes[nid].view.xy_pos = [x + dx, y + dy]

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        self.finish()

    def finish(self):
        if not self._start:
            return
        start, nodes = self._start
        self._start = None
        dx, dy = self.pos().x() - start.x(), self.pos().y() - start.y()
        if abs(dx) < 0.05 and abs(dy) < 0.05:
            return
        self.groups.moved(self.index, dx, dy, {nid: (x + dx, y + dy) for nid, (x, y) in nodes.items()})

    def mouseDoubleClickEvent(self, event):
        title, ok = QInputDialog.getText(None, "Group title", "Title:", text=self.title.text())
        if ok:
            self.groups.rename(self.index, title)


class Groups:
    """The group frames of a GraphView, following the Document."""

    def __init__(self, view):
        self.view, self.doc = view, view.doc
        self.items = []
        self.doc.groups_changed.connect(self.rebuild)
        self.doc.reset.connect(self.rebuild)

    def rebuild(self):
        scene = self.view.viewer.scene()
        for item in self.items:
            scene.removeItem(item)
        self.items = []
        for i, data in enumerate(self.doc.groups()):
            if _valid(data):
                item = GroupItem(self, i, data)
                scene.addItem(item)
                self.items.append(item)

    def add(self, ids, title="Group"):
        """A frame around these nodes; returns its index."""
        rect = QRectF()
        for nid in ids:
            rect = rect.united(self.view.nodes[nid].view.sceneBoundingRect())
        rect.adjust(-PAD, -PAD - TITLE_H, PAD, PAD)
        groups = self.doc.groups()
        groups.append({"title": title, "rect": [round(v, 1) for v in (rect.x(), rect.y(), rect.width(),
                                                                         rect.height())]})
        self.doc.set_groups(groups, "Group nodes")
        return len(groups) - 1

    def moved(self, index, dx, dy, positions):
        groups = self.doc.groups()
        x, y, w, h = groups[index]["rect"]
        groups[index]["rect"] = [round(x + dx, 1), round(y + dy, 1), w, h]
        self.doc.set_groups(groups, "Move group", positions=positions)

    def rename(self, index, title):
        groups = self.doc.groups()
        groups[index]["title"] = title
        self.doc.set_groups(groups, "Rename group")

    def remove(self, index):
        groups = self.doc.groups()
        del groups[index]
        self.doc.set_groups(groups, "Remove group")


def _valid(data):
    rect = data.get("rect") if isinstance(data, dict) else None
    return isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, (int, float)) for v in rect) \
        and rect[2] > 0 and rect[3] > 0
