"""The window's actions, menus and toolbar, and the help (F1): the guide and the shortcuts."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMenu, QTabWidget, QTextBrowser, QVBoxLayout

from latentloom.app.ui.icons import icon
from latentloom.app import paths

GUIDE = paths.GUIDE
GESTURES = [
    ("Tab / right-click on the canvas", "Search and add a node"),
    ("Drag from the Nodes list", "Add a node where it is dropped"),
    ("Drag from a port to a port", "Connect (an input takes one link; a new link replaces the old)"),
    ("Drag a link off an input", "Disconnect"),
    ("Alt+Shift+drag", "Cut links"),
    ("Mouse wheel / Alt+drag or middle-drag", "Zoom / pan the canvas"),
    ("Right-click a node", "Node menu: duplicate, copy, delete, group"),
    ("Drop a .json or a PNG on the canvas", "Open the workflow it carries"),
]


def build_actions(w):
    """Every action of the window, by name. Each key sequence is used once (no ambiguity)."""
    actions = {}

    def A(name, text, slot, shortcuts=(), canvas=False, tip="", icon_name=None):
        act = QAction(text, w)
        if shortcuts:
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        if canvas:  # editing keys act on the canvas only, so text fields keep theirs
            act.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            w.view.widget.addAction(act)
        if tip:
            act.setToolTip(tip)
        if icon_name:
            act.setIcon(icon(icon_name))
        act.triggered.connect(lambda checked=False: slot())
        actions[name] = act
        return act

    f, c, r = w.files, w.clipboard, w.runs
    A("new", "&New", f.new_document, [QKeySequence.New], icon_name="new")
    A("open", "&Open…", f.open_dialog, [QKeySequence.Open], icon_name="open")
    A("save", "&Save", f.save, [QKeySequence.Save], icon_name="save")
    A("save_as", "Save &As…", f.save_as, ["Ctrl+Shift+S"])
    A("settings", "Se&ttings…", w.edit_settings, ["Ctrl+,"])
    A("quit", "&Quit", w.close, [QKeySequence.Quit])
    undo = w.doc.undo_stack.createUndoAction(w, "&Undo")
    undo.setShortcuts([QKeySequence.Undo])
    redo = w.doc.undo_stack.createRedoAction(w, "&Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    actions["undo"], actions["redo"] = undo, redo
    A("cut", "Cu&t", c.cut, [QKeySequence.Cut], canvas=True)
    A("copy", "&Copy", c.copy, [QKeySequence.Copy], canvas=True)
    A("paste", "&Paste", c.paste, [QKeySequence.Paste], canvas=True)
    A("duplicate", "&Duplicate", c.duplicate, ["Ctrl+D"], canvas=True)
    A("delete", "De&lete", c.delete_selected, [QKeySequence.Delete, "Backspace"], canvas=True)
    A("select_all", "Select &All", w.view.select_all, [QKeySequence.SelectAll], canvas=True)
    A("add_node", "&Add Node…", w.show_palette, ["Shift+A"], canvas=True, icon_name="add")
    A("group", "&Group Selection", w.group_selected, ["Ctrl+G"], canvas=True)
    A("frame_all", "&Frame All", lambda: w.view.frame(), ["F", "Home"], canvas=True, icon_name="frame")
    A("frame_selected", "Frame &Selection", w.frame_selected, ["Shift+F"], canvas=True)
    A("auto_layout", "Auto &Layout", w.auto_layout, ["Ctrl+L"], canvas=True,
      tip="Lay the graph out left to right")
    A("run", "&Run", r.submit, ["Ctrl+Return", "Ctrl+Enter"], icon_name="run",
      tip="Run the workflow (Ctrl+Enter); while a run goes on, this queues another")
    A("cancel", "&Cancel Run", r.cancel, ["Escape"], icon_name="stop",
      tip="Stop the current run at the next sampler step (Esc); the queue goes on")
    A("validate", "&Check Workflow", w.validate, ["F7"])
    A("clear_log", "Clear &Log", w.log_view.clear)
    A("help", "&Help", w.show_help, ["F1"], icon_name="help")
    A("about", "&About Latent Loom", w.about)
    actions["cancel"].setEnabled(False)
    return actions


def build_menus(w):
    bar, a = w.menuBar(), w.actions
    file = bar.addMenu("&File")
    file.addActions([a["new"], a["open"]])
    w.recent_menu = file.addMenu("Open &Recent")
    w.recent_menu.aboutToShow.connect(lambda: w.files.fill_recent(w.recent_menu))
    file.addActions([a["save"], a["save_as"]])
    file.addSeparator()
    file.addAction(a["settings"])
    file.addSeparator()
    file.addAction(a["quit"])
    edit = bar.addMenu("&Edit")
    edit.addActions([a["undo"], a["redo"]])
    edit.addSeparator()
    edit.addActions([a["cut"], a["copy"], a["paste"], a["duplicate"], a["delete"]])
    edit.addSeparator()
    edit.addActions([a["select_all"], a["add_node"], a["group"]])
    view = bar.addMenu("&View")
    view.addActions([a["frame_all"], a["frame_selected"], a["auto_layout"]])
    view.addSeparator()
    for dock in w.docks:
        view.addAction(dock.toggleViewAction())
    view.addAction(a["clear_log"])
    run = bar.addMenu("&Run")
    run.addActions([a["run"], a["cancel"], a["validate"]])
    help_ = bar.addMenu("&Help")
    help_.addActions([a["help"], a["about"]])
    tools = w.addToolBar("Run")
    tools.setObjectName("run-toolbar")
    tools.addActions([a["new"], a["open"], a["save"]])
    tools.addSeparator()
    tools.addActions([a["run"], a["cancel"]])
    tools.addWidget(w.progress)
    tools.addWidget(w.run_label)
    tools.addSeparator()
    tools.addActions([a["frame_all"], a["add_node"]])


def node_menu(w, global_pos):
    menu = QMenu(w)
    a = w.actions
    menu.addActions([a["duplicate"], a["copy"], a["cut"], a["delete"]])
    menu.addSeparator()
    menu.addActions([a["group"], a["frame_selected"]])
    menu.exec(global_pos)


def shortcut_rows(actions):
    rows = []
    for act in actions.values():
        keys = ", ".join(k.toString(QKeySequence.NativeText) for k in act.shortcuts())
        if keys:
            rows.append((keys, act.text().replace("&", "").rstrip("…")))
    return rows + GESTURES


def shortcuts_html(rows):
    body = "".join(f"<tr><td style='padding:2px 14px 2px 0'><b>{html.escape(k)}</b></td>"
                   f"<td>{html.escape(t)}</td></tr>" for k, t in rows)
    return f"<table cellspacing='0'>{body}</table>"


class HelpDialog(QDialog):
    """F1: the editor guide and the shortcuts, both as wrapped text (no grid, no sideways scroll)."""

    def __init__(self, rows, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Latent Loom help")
        self.tabs = QTabWidget()
        self.guide = QTextBrowser()
        self.guide.setOpenExternalLinks(True)
        if GUIDE.is_file():
            self.guide.setMarkdown(GUIDE.read_text(encoding="utf-8"))
        else:
            self.guide.setPlainText("docs/editor.md is not installed.")
        self.keys = QTextBrowser()
        self.keys.setHtml(shortcuts_html(rows))
        self.tabs.addTab(self.guide, "Guide")
        self.tabs.addTab(self.keys, "Shortcuts")
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addWidget(self.tabs)
        col.addWidget(buttons)
        self.resize(720, 620)
