"""The look: one theme over the whole application, readable node text, bundled icons, one colour
table for categories and ports, and a left-to-right layout with no wire under a node."""
import json
import re
from pathlib import Path

from PySide6.QtGui import QFontInfo, QPalette
from PySide6.QtWidgets import QApplication

from latentloom.app.ui import colors, icons
from latentloom.app.ui.layout import blocked
from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS


def test_the_theme_is_applied_to_the_whole_application(window, settings):
    app = QApplication.instance()
    assert app.property("latentloom_style") == "fusion"
    assert app.palette().color(QPalette.Window).lightness() < 60
    assert app.palette().color(QPalette.Base).lightness() < 60
    assert app.palette().color(QPalette.Text).lightness() > 180
    assert "QDockWidget::title" in app.styleSheet()
    for widget in (window.props_dock, window.log_view, window.menuBar(), window.history, window.sweep):
        assert widget.palette().color(QPalette.Window).lightness() < 60, widget
    settings.theme = "light"
    window.apply_settings()
    assert app.palette().color(QPalette.Window).lightness() > 180
    assert window.log_view.palette().color(QPalette.Base).lightness() > 180
    settings.theme = "dark"
    window.apply_settings()
    assert app.palette().color(QPalette.Window).lightness() < 60


def test_node_text_is_at_least_10_px(window):
    for nid, node in window.view.nodes.items():
        for item in node.view.text_items():
            assert QFontInfo(item.font()).pixelSize() >= 10, (nid, item)
        form = window.view.form(nid)
        assert QFontInfo(form.font()).pixelSize() >= 10
        for editor in form.editors.values():
            assert QFontInfo(editor.font()).pixelSize() >= 10


def test_icons_are_bundled_svgs_and_no_emoji_is_left(window):
    for name in icons.names():
        assert not icons.icon(name).pixmap(24, 24).isNull(), name
    window.view.select(["noise"])
    dice = window.properties.editor("seed").dice
    assert dice.text() == "" and not dice.icon().isNull()
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
    for path in Path("app/ui").glob("*.py"):
        assert not emoji.search(path.read_text(encoding="utf-8")), path


def test_every_category_and_port_type_has_a_colour(window):
    categories = {spec.category for spec in catalog}
    assert categories <= set(colors.CATEGORIES), categories - set(colors.CATEGORIES)
    types = {p.type for spec in catalog for p in list(spec.inputs) + list(spec.outputs)}
    assert types <= set(colors.PORT_COLORS), types - set(colors.PORT_COLORS)
    nid = window.doc.add_node("InvertMask")
    assert tuple(window.view.nodes[nid].model.color[:3]) == colors.CATEGORIES["mask"]


def _without_positions(name):
    data = json.loads((WORKFLOWS / name).read_text())
    for node in data["nodes"].values():
        node.get("ui", {}).pop("pos", None)
    return data


def test_auto_layout_puts_no_wire_under_a_node(window, tmp_path):
    for path in sorted(WORKFLOWS.glob("*.json")):
        data = _without_positions(path.name)
        data.pop("sweep", None)
        window.doc.load(data)                        # an imported graph: laid out on open
        v = window.view
        pos = {nid: window.doc.pos(nid) for nid in window.doc.workflow.nodes}
        xs = {nid: p[0] for nid, p in pos.items()}
        assert blocked(window.doc.workflow, pos, v.sizes(), v.port_y) == [], path.name
        for nid, node in window.doc.workflow.nodes.items():   # left to right
            assert all(xs[src] < xs[nid] for src, _ in node.inputs.values()), (path.name, nid)
    assert window.open_path(str(WORKFLOWS / "lora.json"), ask=False)
    window.auto_layout()                             # the action: one undo step
    pos = {nid: window.doc.pos(nid) for nid in window.doc.workflow.nodes}
    assert blocked(window.doc.workflow, pos, window.view.sizes(), window.view.port_y) == []
    window.doc.undo_stack.undo()
    assert not window.doc.dirty


def test_shipped_workflows_open_with_no_wire_under_a_node(window):
    for path in sorted(WORKFLOWS.glob("*.json")):
        assert window.open_path(str(path), ask=False), path.name
        pos = {nid: window.doc.pos(nid) for nid in window.doc.workflow.nodes}
        assert blocked(window.doc.workflow, pos, window.view.sizes(), window.view.port_y) == [], path.name
