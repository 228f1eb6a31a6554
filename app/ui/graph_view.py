"""The canvas: a NodeGraphQt view of the Document.

NodeGraphQt is only the view here. Node classes are built from the node specs;
each view node keeps its engine node id in ``engine_id``. The view follows the
Document's signals, and every user gesture on the canvas (connect, disconnect,
move, drop) is turned into a Document edit; NodeGraphQt's own undo stack and
session format are not used.
"""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from pathlib import Path

from NodeGraphQt import BaseNode, NodeGraph
from NodeGraphQt.constants import PortTypeEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from NodeGraphQt.widgets.viewer import NodeViewer
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsProxyWidget, QGraphicsSimpleTextItem, QGraphicsTextItem

from latentloom.app.formats import placeholders
from latentloom.app.ui.colors import PLACEHOLDER_BORDER, category_color, port_color
from latentloom.app.ui.document import LinkRefused, snake
from latentloom.app.ui import seeds
from latentloom.app.ui.groups import Groups
from latentloom.app.ui.icons import icon
from latentloom.app.ui.layout import layered
from latentloom.app.ui.node_widgets import NodeForm

MIME_NODE_TYPE = "application/x-latentloom-node-type"
IN, OUT = PortTypeEnum.IN.value, PortTypeEnum.OUT.value

# Run states shown on the canvas: border colour and label.
STATES = {
    "queued": (150, 150, 165),
    "running": (80, 160, 255),
    "cached": (90, 200, 210),
    "done": (90, 205, 110),
    "failed": (240, 70, 70),
    "invalid": (240, 70, 70),
    "cancelled": (200, 170, 80),
    "missing": (240, 150, 60),
}
SUMMARY_CHARS = 34
TITLE_PX, LABEL_PX, STATUS_PX = 13, 12, 12   # text sizes in pixels at 100 % zoom


def _short(value, kind):
    if kind == "file" and value:
        text = Path(str(value)).name or str(value)
    elif isinstance(value, float):
        text = f"{value:g}"
    elif value == "":
        text = "—"
    else:
        text = str(value).replace("\n", " ")
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


def summary(spec, params):
    """The lines a node body shows: its params and their values."""
    return "\n".join(f"{p.name}: {_short(params.get(p.name, p.default), p.kind)}" for p in spec.params)


def _font(px, bold=False):
    font = QFont()
    font.setPixelSize(px)
    font.setBold(bold)
    return font


class LoomNodeItem(NodeItem):
    """A node item with its params' form, a run-state label above and a message below."""

    def __init__(self, name="node", parent=None):
        super().__init__(name, parent)
        self.state = None
        self.help_tip = ""   # the node's tooltip (NodeGraphQt would show its class name instead)
        self._summary = ""
        self.form = None
        self._proxy = QGraphicsProxyWidget(self)
        self._status = QGraphicsSimpleTextItem(self)
        self._status.setFont(_font(STATUS_PX, bold=True))
        self._message = QGraphicsTextItem(self)
        self._message.setFont(_font(LABEL_PX))
        self._message.setDefaultTextColor(QColor(255, 120, 120))
        self._message.setTextWidth(280)
        self.text_item.setFont(_font(TITLE_PX, bold=True))

    def set_form(self, form):
        self.form = form
        self._proxy.setWidget(form)
        if self.scene() is not None:
            self.draw_node()

    def _add_port(self, port):
        port = super()._add_port(port)
        text = self._input_items.get(port) or self._output_items.get(port)
        if text is not None:
            text.setFont(_font(LABEL_PX))
            text.setDefaultTextColor(QColor(205, 208, 216))
        return port

    # texts
    def set_summary(self, text):
        self._summary = text

    def summary_text(self):
        return self._summary

    def set_state(self, state, label="", message=""):
        self.state = state
        self._status.setText(label or (state or ""))
        self._status.setBrush(QColor(*STATES.get(state, (200, 200, 200))))
        self._status.setVisible(bool(state))
        self._message.setPlainText(message or "")
        self._message.setVisible(bool(message))
        self._place_labels()
        self.update()

    def _tooltip_disable(self, state):
        self.setToolTip(self.help_tip) if self.help_tip else super()._tooltip_disable(state)

    def status_text(self):
        return self._status.text() if self._status.isVisible() else ""

    def message_text(self):
        return self._message.toPlainText() if self._message.isVisible() else ""

    def text_items(self):
        """Every text item on the node (for the readability test)."""
        return [self.text_item, self._status, self._message, *self._input_items.values(),
                *self._output_items.values()]

    # layout
    def _form_size(self):
        if self.form is None:
            return 0.0, 0.0
        hint = self.form.sizeHint()
        return float(self.form.width()), float(hint.height())

    def _calc_size_horizontal(self):
        width, height = super()._calc_size_horizontal()
        fw, fh = self._form_size()
        if fh:
            width = max(width, fw + 8)
            height += fh + 2
        return width, height

    def _draw_node_horizontal(self):
        super()._draw_node_horizontal()
        self._place_labels()

    def _place_labels(self):
        fw, fh = self._form_size()
        if self.form is not None:
            self.form.resize(int(fw), int(fh))
            self._proxy.setPos((self._width - fw) / 2, self._height - fh - 3)
        self._status.setPos(2, -self._status.boundingRect().height() - 2)
        self._message.setPos(0, self._height + 2)

    def paint(self, painter, option, widget):
        super().paint(painter, option, widget)
        if self.state in STATES:
            painter.save()
            pen = QPen(QColor(*STATES[self.state]), 2.6)
            painter.setPen(pen)
            painter.setBrush(Qt.NoBrush)
            path = QPainterPath()
            path.addRoundedRect(QRectF(0, 0, self._width, self._height), 4.0, 4.0)
            painter.drawPath(path)
            painter.restore()


class LoomNode(BaseNode):
    """Base of the node classes built from specs (see node_class)."""
    __identifier__ = "latentloom"
    NODE_NAME = "Node"
    SPEC = None

    def __init__(self):
        super().__init__(LoomNodeItem)
        self.engine_id = None
        spec = self.SPEC
        color = category_color(spec.category)
        self.model.color = (*color, 255)
        self.view.color = (*color, 255)
        for p in spec.inputs:
            port = self.add_input(p.name, multi_input=False, color=port_color(p.type))
            port.view.setToolTip(f"{p.name}: {p.type}{' (optional)' if p.optional else ''}\n{p.help}".strip())
        for p in spec.outputs:
            port = self.add_output(p.name, multi_output=True, color=port_color(p.type))
            port.view.setToolTip(f"{p.name}: {p.type}\n{p.help}".strip())
        self.view.help_tip = f"{spec.type} [{spec.category}]\n{spec.help}"


class PlaceholderNode(LoomNode):
    """A kept unsupported ComfyUI node: red, a warning icon, the ports its spec gives (one a link)."""

    def __init__(self, spec):
        self.SPEC = spec
        super().__init__()
        self.model.border_color = self.view.border_color = (*PLACEHOLDER_BORDER, 255)

    def update(self):
        super().update()  # NodeGraphQt sets its own icon here: draw ours over it
        self.view.icon_item.setPixmap(icon("warning").pixmap(16, 16))


def node_class(spec):
    """A NodeGraphQt node class for one node spec."""
    return type(spec.type, (LoomNode,), {"__identifier__": "latentloom", "NODE_NAME": spec.type, "SPEC": spec})


class LoomViewer(NodeViewer):
    """NodeViewer with our own context menu, Tab palette and drop formats."""
    menu_requested = Signal(object, object, object)  # engine node id or None, scene pos, global pos
    tab_pressed = Signal(object, object)              # scene pos, global pos

    def __init__(self, parent=None):
        super().__init__(parent, undo_stack=None)  # no NodeGraphQt undo actions or shortcuts
        self.node_id_of = lambda item: None

    def event(self, event):
        if event.type() == QEvent.KeyPress and event.key() == Qt.Key_Tab and not self._LIVE_PIPE.isVisible():
            pos = self.mapFromGlobal(self.cursor().pos())
            if not self.rect().contains(pos):
                pos = self.rect().center()
            self.tab_pressed.emit(self.mapToScene(pos), self.mapToGlobal(pos))
            return True
        return super().event(event)

    def contextMenuEvent(self, event):
        self.RMB_state = False
        scene_pos = self.mapToScene(event.pos())
        nodes = [i for i in self.scene().items(scene_pos) if isinstance(i, LoomNodeItem)]
        self.menu_requested.emit(self.node_id_of(nodes[0]) if nodes else None, scene_pos, event.globalPos())
        event.accept()

    def _acceptable(self, mime):
        return mime.hasFormat(MIME_NODE_TYPE) or mime.hasUrls()

    def dragEnterEvent(self, event):
        event.accept() if self._acceptable(event.mimeData()) else event.ignore()

    def dragMoveEvent(self, event):
        event.accept() if self._acceptable(event.mimeData()) else event.ignore()


class LoomGraph(NodeGraph):
    """NodeGraph whose viewer gestures go to the GraphView instead of NodeGraphQt's undo stack."""

    def __init__(self, handler, **kw):
        self._handler = handler
        super().__init__(**kw)

    def _on_connection_changed(self, disconnected, connected):
        self._handler.view_connection_changed(disconnected, connected)

    def _on_connection_sliced(self, ports):
        self._handler.view_connection_changed(ports, [])

    def _on_nodes_moved(self, node_data):
        self._handler.view_nodes_moved(node_data)

    def _on_insert_node(self, pipe, node_id, prev_node_pos):
        self._handler.view_nodes_moved(prev_node_pos)

    def _on_node_data_dropped(self, mimedata, pos):
        self._handler.view_dropped(mimedata, pos)

    def _on_node_name_changed(self, node_id, name):
        node = self.get_node_by_id(node_id)
        if node is not None:  # titles come from the document; undo the in-place rename
            node.view.name = node.model.name
            node.view.draw_node()

    def _on_search_triggered(self, node_type, pos):
        pass


class GraphView(QObject):
    message = Signal(str)                     # for the status bar
    selection_changed = Signal(list)          # engine node ids
    palette_requested = Signal(object, object)  # scene pos, global pos
    node_menu_requested = Signal(str, object)   # engine node id, global pos
    files_dropped = Signal(list)

    def __init__(self, doc, parent=None, models_dirs=lambda: []):
        super().__init__(parent)
        self.doc, self.models_dirs = doc, models_dirs
        self.viewer = LoomViewer()
        self.viewer.node_id_of = self._engine_id_of_item
        self.graph = LoomGraph(self, viewer=self.viewer)
        self.graph.set_acyclic(False)        # the document refuses cycles, with a message
        self.graph.set_pipe_collision(False)
        self.graph.set_background_color(30, 31, 34)
        self.graph.set_grid_color(42, 43, 47)
        self.classes = {}
        for spec in doc.catalog:
            cls = node_class(spec)
            self.graph.register_node(cls)
            self.classes[spec.type] = cls
        self.nodes = {}  # engine id -> view node
        self.groups = Groups(self)
        doc.reset.connect(self.rebuild)
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(self._on_node_removed)
        doc.input_changed.connect(self._sync_input)
        doc.param_changed.connect(self._on_param_changed)
        doc.node_moved.connect(self._on_node_moved)
        doc.node_ui_changed.connect(self._on_ui_changed)
        self.graph.node_selection_changed.connect(lambda *_: self.selection_changed.emit(self.selected_ids()))
        self.graph.node_selected.connect(lambda *_: self.selection_changed.emit(self.selected_ids()))
        self.viewer.menu_requested.connect(self._on_menu_requested)
        self.viewer.tab_pressed.connect(self.palette_requested)

    @property
    def widget(self):
        return self.viewer

    # --- document -> view ------------------------------------------------------

    def rebuild(self):
        for node in list(self.nodes.values()):
            self._delete_view_node(node)
        self.nodes.clear()
        for nid in self.doc.workflow.nodes:
            self._create(nid)
        for nid, node in self.doc.workflow.nodes.items():
            for port in node.inputs:
                self._sync_input(nid, port)
        self.layout_missing()

    def _title(self, nid, type):
        if placeholders.is_placeholder(type):
            return f"{placeholders.title(self.doc.workflow.nodes[nid])} · {nid}"
        return type if nid == snake(type) else f"{type} · {nid}"

    def _create(self, nid):
        wn = self.doc.workflow.nodes[nid]
        cls = self.classes.get(wn.type)
        node = cls() if cls is not None else PlaceholderNode(self.doc.spec(nid))
        node.engine_id = nid
        node.NODE_NAME = self._title(nid, wn.type)
        node.view.set_summary(summary(node.SPEC, wn.params))
        notes = placeholders.data_lines(wn) if cls is None else ()
        form = NodeForm(node.SPEC, wn.params, self.models_dirs, wn.ui, notes=notes)
        form.edited.connect(lambda name, value, merge, nid=nid: self._form_edited(nid, name, value, merge))
        form.seed_mode_edited.connect(lambda how, nid=nid: self.doc.set_node_ui(
            nid, seeds.UI_KEY, None if how == "fixed" else how))
        node.view.set_form(form)
        pos = self.doc.pos(nid)
        self.graph.add_node(node, pos=list(pos) if pos else [0.0, 0.0], selected=False, push_undo=False)
        self.nodes[nid] = node
        return node

    def _on_node_added(self, nid):
        self._create(nid)
        for port in self.doc.workflow.nodes[nid].inputs:
            self._sync_input(nid, port)
        for other, node in self.doc.workflow.nodes.items():  # links that waited for this node
            for port, (src, _) in node.inputs.items():
                if src == nid and other != nid:
                    self._sync_input(other, port)
        if self.doc.pos(nid) is None:
            self.layout_missing()

    def _delete_view_node(self, node):
        for port in node.input_ports() + node.output_ports():
            for other in port.connected_ports():
                port.disconnect_from(other, push_undo=False, emit_signal=False)
        self.graph.delete_node(node, push_undo=False)

    def _on_node_removed(self, nid):
        node = self.nodes.pop(nid, None)
        if node is not None:
            self._delete_view_node(node)

    def _form_edited(self, nid, name, value, merge):
        if nid in self.doc.workflow.nodes:
            self.doc.set_param(nid, name, value, merge=merge)

    def _on_param_changed(self, nid, name):
        node = self.nodes.get(nid)
        if node is not None:
            params = self.doc.workflow.nodes[nid].params
            node.view.set_summary(summary(node.SPEC, params))
            param = node.SPEC.param(name)
            if param is not None:
                node.view.form.set_value(name, params.get(name, param.default))

    def _on_ui_changed(self, nid, key):
        node = self.nodes.get(nid)
        if node is not None and key == seeds.UI_KEY and node.view.form.seed_mode is not None:
            node.view.form.seed_mode.set_value(seeds.mode(self.doc, nid))

    def form(self, nid):
        """The on-node params form of a node."""
        return self.nodes[nid].view.form

    def _on_node_moved(self, nid):
        node, pos = self.nodes.get(nid), self.doc.pos(nid)
        if node is not None and pos is not None:
            cur = node.view.xy_pos
            if abs(cur[0] - pos[0]) > 0.05 or abs(cur[1] - pos[1]) > 0.05:
                node.set_property("pos", [pos[0], pos[1]], push_undo=False)

    def _sync_input(self, nid, port_name):
        """Make the view's links into nid.port_name match the document (model and pipes)."""
        node = self.nodes.get(nid)
        if node is None:
            return
        port = node.inputs().get(port_name)
        if port is None:
            return
        link = self.doc.workflow.nodes[nid].inputs.get(port_name)
        want = None
        if link is not None and link[0] in self.nodes:
            want = self.nodes[link[0]].outputs().get(link[1])
        for other in port.connected_ports():
            if other is not want:
                port.disconnect_from(other, push_undo=False, emit_signal=False)
        if want is not None and want not in port.connected_ports():
            want.connect_to(port, push_undo=False, emit_signal=False)
        # the viewer may have removed or drawn pipes itself during a drag
        for pipe in list(port.view.connected_pipes):
            if want is None or pipe.output_port is not want.view:
                pipe.delete()
        if want is not None and not port.view.connected_pipes:
            self.viewer.establish_connection(want.view, port.view)
        spec_port = node.SPEC.input(port_name)
        for pipe in port.view.connected_pipes:  # links take the colour of their type
            pipe.color = (*port_color(spec_port.type), 255)
            pipe.reset()

    # --- view gestures -> document edits ------------------------------------------

    def _engine_id_of_item(self, item):
        node = self.graph.get_node_by_id(item.id)
        return getattr(node, "engine_id", None)

    def _port_ref(self, port_item):
        return self._engine_id_of_item(port_item.node), port_item.name

    def _orient(self, a, b):
        """(source id, output, target id, input) for a pair of port items in any order."""
        inp, out = (a, b) if a.port_type == IN else (b, a)
        src, oname = self._port_ref(out)
        dst, iname = self._port_ref(inp)
        return src, oname, dst, iname

    def view_connection_changed(self, disconnected, connected):
        links = [self._orient(a, b) for a, b in connected]
        cuts = [self._orient(a, b) for a, b in disconnected]
        targets = {(dst, inp) for _, _, dst, inp in links}
        touched = targets | {(dst, inp) for _, _, dst, inp in cuts}
        self.doc.undo_stack.beginMacro("Edit links")
        try:
            for src, out, dst, inp in cuts:
                if (dst, inp) not in targets and self.doc.workflow.nodes[dst].inputs.get(inp) == (src, out):
                    self.doc.disconnect(dst, inp)
            for src, out, dst, inp in links:
                try:
                    self.doc.connect(src, out, dst, inp)
                except LinkRefused as e:
                    self.message.emit(str(e))
        finally:
            self.doc.undo_stack.endMacro()
        for dst, inp in touched:
            self._sync_input(dst, inp)

    def view_nodes_moved(self, node_data):
        positions, previous = {}, {}
        for item, prev in node_data.items():
            nid = self._engine_id_of_item(item)
            if nid in self.doc.workflow.nodes:
                positions[nid] = tuple(item.xy_pos)
                previous[nid] = tuple(prev)
        self.doc.move(positions, previous)

    def view_dropped(self, mime, pos):
        if mime.hasFormat(MIME_NODE_TYPE):
            type = bytes(mime.data(MIME_NODE_TYPE).data()).decode()
            if type in self.classes:
                nid = self.doc.add_node(type, pos=(pos.x(), pos.y()))
                self.select([nid])
        elif mime.hasUrls():
            paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if paths:
                self.files_dropped.emit(paths)

    def _on_menu_requested(self, nid, scene_pos, global_pos):
        if nid is None:
            self.palette_requested.emit(scene_pos, global_pos)
        else:
            if nid not in self.selected_ids():
                self.select([nid])
            self.node_menu_requested.emit(nid, global_pos)

    # --- selection, framing, states --------------------------------------------

    def selected_ids(self):
        return [n.engine_id for n in self.graph.selected_nodes() if getattr(n, "engine_id", None)]

    def select(self, ids):
        ids = set(ids)
        for nid, node in self.nodes.items():
            node.view.setSelected(nid in ids)
        self.selection_changed.emit(self.selected_ids())

    def select_all(self):
        self.select(list(self.nodes))

    def items_rect(self, ids=None):
        rect = QRectF()
        for nid in (ids or list(self.nodes)):
            item = self.nodes[nid].view
            rect = rect.united(item.sceneBoundingRect().united(item.mapRectToScene(item.childrenBoundingRect())))
        return rect

    def frame(self, ids=None, margin=40):
        rect = self.items_rect(ids)
        if rect.isEmpty():
            return
        rect.adjust(-margin, -margin, margin, margin)
        self.viewer.set_scene_rect([rect.x(), rect.y(), rect.width(), rect.height()])
        if self.viewer.get_zoom() > 0.1:
            self.viewer.reset_zoom(rect.center())

    def view_state(self):
        return {"rect": [round(v, 1) for v in self.viewer.scene_rect()]}

    def set_view_state(self, state):
        rect = state.get("rect") if isinstance(state, dict) else None
        if isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, (int, float)) for v in rect) \
                and rect[2] > 0 and rect[3] > 0:
            self.viewer.set_scene_rect(rect)
            return True
        return False

    def cursor_scene_pos(self):
        pos = self.viewer.mapFromGlobal(self.viewer.cursor().pos())
        if not self.viewer.rect().contains(pos):
            pos = self.viewer.rect().center()
        p = self.viewer.mapToScene(pos)
        return p.x(), p.y()

    def center_scene_pos(self):
        p = self.viewer.mapToScene(self.viewer.rect().center())
        return p.x(), p.y()

    def set_state(self, nid, state, label="", message=""):
        node = self.nodes.get(nid)
        if node is not None:
            node.view.set_state(state, label, message)

    def clear_states(self):
        for node in self.nodes.values():
            node.view.set_state(None)

    def state(self, nid):
        return self.nodes[nid].view.state

    def layout_missing(self):
        """Place the nodes that have no position (columns by link depth) and store the positions."""
        missing = [nid for nid in self.doc.workflow.nodes if self.doc.pos(nid) is None]
        if not missing:
            return
        placed = {nid: self.doc.pos(nid) for nid in self.doc.workflow.nodes if nid not in missing}
        for nid, pos in layered(self.doc.workflow, self.sizes(), missing, placed, self.port_y).items():
            self.doc.place(nid, pos)
            self.nodes[nid].set_property("pos", [pos[0], pos[1]], push_undo=False)

    def sizes(self):
        return {nid: (n.view.width, n.view.height) for nid, n in self.nodes.items()}

    def port_y(self, nid, port, output=False):
        """A port's centre below its node's top (for the layout)."""
        item = self.port_item(nid, port, output)
        return item.pos().y() + item.boundingRect().height() / 2

    def auto_layout(self):
        """Lay every node out left to right, no wire under a node (one undo step)."""
        self.doc.move(layered(self.doc.workflow, self.sizes(), list(self.doc.workflow.nodes),
                              port_y=self.port_y))

    def port_item(self, nid, name, output=False):
        """The view's port item (for tests and gestures)."""
        node = self.nodes[nid]
        return (node.outputs() if output else node.inputs())[name].view

    def scene_pos_of(self, nid):
        return QPointF(*self.nodes[nid].view.xy_pos)
