"""The main window: canvas, node list, properties, images, log; menus, toolbar and files."""
from app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import html
import json
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu,
                               QMessageBox, QPlainTextEdit, QProgressBar, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from app.core.workflow import WorkflowError
from app.engine import events as ev
from app.ui.document import CLIPBOARD_FORMAT, Document
from app.ui.graph_view import GraphView
from app.ui.image_panel import ImagePanel
from app.ui.palette import NodeList, NodePalette
from app.ui.properties import PropertiesPanel
from app.ui.runner import Runner
from app.ui.settings import SettingsDialog

DEFAULT_WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "txt2img.json"
EDITOR_UI_KEY = "editor"  # the editor's state inside the workflow's top-level "ui"
GESTURES = [
    ("Tab / right-click on the canvas", "Search and add a node"),
    ("Drag from the Nodes list", "Add a node where it is dropped"),
    ("Drag from a port to a port", "Connect (an input takes one link; a new link replaces the old)"),
    ("Drag a link off an input", "Disconnect"),
    ("Alt+Shift+drag", "Cut links"),
    ("Mouse wheel / Alt+drag or middle-drag", "Zoom / pan the canvas"),
    ("Right-click a node", "Node menu: duplicate, copy, delete"),
    ("Drop a .json or a PNG on the canvas", "Open the workflow it carries"),
]


class MainWindow(QMainWindow):
    run_done = Signal(object, object)  # RunResult or None, error or None: after the window has shown it

    def __init__(self, settings, catalog=None, file=None, load_default=True):
        super().__init__()
        if catalog is None:
            from nodes import catalog
        self.settings, self.catalog = settings, catalog
        self.doc = Document(catalog, self)
        self.doc.new_params = {"dtype": settings.dtype}
        self.view = GraphView(self.doc, self)
        self.setCentralWidget(self.view.widget)
        self.palette = NodePalette(catalog, self)
        self.node_list = NodeList(catalog)
        self.properties = PropertiesPanel(self.doc, lambda: self.settings.models_dirs)
        self.images = ImagePanel()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setFormat("%v/%m steps")
        self.progress.setValue(0)
        self.run_label = QLabel("")
        self.runner = Runner(catalog, settings.output_dir, settings.models_dirs, settings.device, self)
        self.last_result = None
        self.run_status = None
        self._shown_outputs = set()
        self.actions = {}
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._wire()
        self.resize(1500, 900)
        geometry, state = settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if file:
            if not self.open_path(file, ask=False):
                self.doc.new()
        elif load_default and DEFAULT_WORKFLOW.is_file():
            self.open_template(DEFAULT_WORKFLOW)
        else:
            self.doc.new()
        self.update_title()

    # --- construction -----------------------------------------------------------

    def _dock(self, title, widget, area, name):
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self):
        self.nodes_dock = self._dock("Nodes", self.node_list, Qt.LeftDockWidgetArea, "nodes")
        self.props_dock = self._dock("Properties", self.properties, Qt.RightDockWidgetArea, "properties")
        self.images_dock = self._dock("Images", self.images, Qt.RightDockWidgetArea, "images")
        self.log_dock = self._dock("Log", self.log_view, Qt.BottomDockWidgetArea, "log")
        self.resizeDocks([self.nodes_dock], [170], Qt.Horizontal)
        self.resizeDocks([self.props_dock], [330], Qt.Horizontal)
        self.resizeDocks([self.log_dock], [130], Qt.Vertical)
        self.resizeDocks([self.props_dock, self.images_dock], [460, 380], Qt.Vertical)

    def _action(self, name, text, slot, shortcuts=(), canvas=False, tip=""):
        act = QAction(text, self)
        if shortcuts:
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        if canvas:  # editing keys act on the canvas only, so text fields keep theirs
            act.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.view.widget.addAction(act)
        if tip:
            act.setToolTip(tip)
        act.triggered.connect(lambda checked=False: slot())
        self.actions[name] = act
        return act

    def _build_actions(self):
        A = self._action
        A("new", "&New", self.new_document, [QKeySequence.New])
        A("open", "&Open…", self.open_dialog, [QKeySequence.Open])
        A("save", "&Save", self.save, [QKeySequence.Save])
        A("save_as", "Save &As…", self.save_as, ["Ctrl+Shift+S"])
        A("settings", "Se&ttings…", self.edit_settings, ["Ctrl+,"])
        A("quit", "&Quit", self.close, [QKeySequence.Quit])
        undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts([QKeySequence.Undo])
        redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.actions["undo"], self.actions["redo"] = undo, redo
        A("cut", "Cu&t", self.cut, [QKeySequence.Cut], canvas=True)
        A("copy", "&Copy", self.copy, [QKeySequence.Copy], canvas=True)
        A("paste", "&Paste", self.paste, [QKeySequence.Paste], canvas=True)
        A("duplicate", "&Duplicate", self.duplicate, ["Ctrl+D"], canvas=True)
        A("delete", "De&lete", self.delete_selected, [QKeySequence.Delete, "Backspace"], canvas=True)
        A("select_all", "Select &All", self.view.select_all, [QKeySequence.SelectAll], canvas=True)
        A("add_node", "&Add Node…", self.show_palette, ["Shift+A"], canvas=True)
        A("frame_all", "&Frame All", lambda: self.view.frame(), ["F", "Home"], canvas=True)
        A("frame_selected", "Frame &Selection", self.frame_selected, ["Shift+F"], canvas=True)
        A("run", "&Run", self.run, ["Ctrl+Return", "Ctrl+Enter"], tip="Run the workflow (Ctrl+Enter)")
        A("cancel", "&Cancel Run", self.cancel_run, ["Escape"], tip="Stop at the next sampler step (Esc)")
        A("validate", "&Check Workflow", self.validate, ["F7"])
        A("clear_log", "Clear &Log", self.log_view.clear)
        A("shortcuts", "&Keyboard Shortcuts", self.show_shortcuts, [QKeySequence.HelpContents, "F1"])
        A("about", "&About Latent Loom", self.about)
        self.actions["cancel"].setEnabled(False)

    def _build_menus(self):
        bar, a = self.menuBar(), self.actions
        file = bar.addMenu("&File")
        file.addActions([a["new"], a["open"]])
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
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
        edit.addActions([a["select_all"], a["add_node"]])
        view = bar.addMenu("&View")
        view.addActions([a["frame_all"], a["frame_selected"]])
        view.addSeparator()
        for dock in (self.nodes_dock, self.props_dock, self.images_dock, self.log_dock):
            view.addAction(dock.toggleViewAction())
        view.addAction(a["clear_log"])
        run = bar.addMenu("&Run")
        run.addActions([a["run"], a["cancel"], a["validate"]])
        help_ = bar.addMenu("&Help")
        help_.addActions([a["shortcuts"], a["about"]])
        tools = self.addToolBar("Run")
        tools.setObjectName("run-toolbar")
        tools.addActions([a["new"], a["open"], a["save"]])
        tools.addSeparator()
        tools.addActions([a["run"], a["cancel"]])
        tools.addWidget(self.progress)
        tools.addWidget(self.run_label)
        tools.addSeparator()
        tools.addActions([a["frame_all"], a["add_node"]])

    def _wire(self):
        self.doc.undo_stack.cleanChanged.connect(lambda _: self.update_title())
        self.doc.path_changed.connect(self.update_title)
        self.doc.param_changed.connect(lambda nid, _: self._stale(nid))
        self.doc.input_changed.connect(lambda nid, _: self._stale(nid))
        self.view.message.connect(lambda m: self.status(m, 10000))
        self.view.selection_changed.connect(self._selection_changed)
        self.view.palette_requested.connect(lambda scene, glob: self.show_palette(scene, glob))
        self.view.node_menu_requested.connect(self._node_menu)
        self.view.files_dropped.connect(self._files_dropped)
        self.palette.chosen.connect(self.add_node_at)
        self.node_list.chosen.connect(lambda t: self.add_node_at(t, None))
        self.images.message.connect(self.status)
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)

    # --- small helpers -------------------------------------------------------------

    def status(self, text, ms=6000):
        self.statusBar().showMessage(text, ms)

    def log(self, text, level="info"):
        color = {"error": "#e05555", "warn": "#d0a040", "ok": "#60b060"}.get(level)
        line = html.escape(text)
        self.log_view.appendHtml(f"<span style='color:{color}'>{line}</span>" if color else line)

    def update_title(self):
        d = self.doc
        if not shiboken6.isValid(d.undo_stack):  # the window is being torn down
            return
        if d.path:
            name = Path(d.path).name
        elif d.origin:
            name = f"Untitled (from {Path(d.origin).name})"
        else:
            name = "Untitled"
        self.setWindowTitle(f"{name}{'*' if d.dirty else ''} — Latent Loom")

    def _stale(self, nid):
        if nid in self.doc.workflow.nodes and not self.runner.busy:
            for n in {nid} | self.doc.workflow.downstream(nid):
                self.view.set_state(n, None)

    def _selection_changed(self, ids):
        self.properties.show_node(ids[0] if len(ids) == 1 else None, count=len(ids))

    # --- adding and editing nodes ------------------------------------------------

    def show_palette(self, scene_pos=None, global_pos=None):
        if scene_pos is None:
            x, y = self.view.cursor_scene_pos()
        else:
            x, y = scene_pos.x(), scene_pos.y()
        if global_pos is None:
            global_pos = self.view.widget.mapToGlobal(self.view.widget.mapFromScene(x, y))
        self.palette.popup(global_pos, (x, y))

    def add_node_at(self, type, pos=None):
        """What the palette and the node list call: add a node at a scene position (or mid-view)."""
        pos = pos or self.view.center_scene_pos()
        nid = self.doc.add_node(type, pos=pos)
        self.view.select([nid])
        return nid

    def delete_selected(self):
        self.doc.remove_nodes(self.view.selected_ids())

    def copy(self):
        ids = self.view.selected_ids()
        if not ids:
            return None
        fragment = self.doc.copy_nodes(ids)
        # plain JSON text: a QMimeData made in Python and handed to the clipboard crashes
        # PySide6 at exit, and JSON text pastes into other editors too
        QApplication.clipboard().setText(json.dumps(fragment))
        self.status(f"Copied {len(ids)} node{'s' if len(ids) > 1 else ''}")
        return fragment

    def cut(self):
        if self.copy():
            self.delete_selected()

    def paste(self):
        try:
            fragment = json.loads(QApplication.clipboard().text() or "null")
            if not isinstance(fragment, dict) or fragment.get("format") != CLIPBOARD_FORMAT:
                raise ValueError("the clipboard holds no Latent Loom nodes")
            ids = self.doc.paste(fragment)
        except ValueError as e:
            self.status(f"Nothing to paste: {e}")
            return []
        self.view.select(ids)
        return ids

    def duplicate(self):
        ids = self.view.selected_ids()
        if ids:
            new = self.doc.duplicate(ids)
            self.view.select(new)
            return new
        return []

    def frame_selected(self):
        self.view.frame(self.view.selected_ids() or None)

    def _node_menu(self, nid, global_pos):
        menu = QMenu(self)
        menu.addActions([self.actions["duplicate"], self.actions["copy"], self.actions["cut"],
                         self.actions["delete"]])
        menu.addSeparator()
        menu.addAction(self.actions["frame_selected"])
        menu.exec(global_pos)

    # --- files ---------------------------------------------------------------------

    def warn(self, title, text):
        """A modal warning (tests replace this)."""
        QMessageBox.warning(self, title, text)

    def ask_unsaved(self):
        """'save', 'discard' or 'cancel' (tests replace this)."""
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                          f"Save the changes to {self.windowTitle().split(' — ')[0].rstrip('*')}?",
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self)
        answer = box.exec()
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def maybe_save(self):
        """True when it is fine to replace or close the document."""
        if not self.doc.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_document(self):
        if not self.maybe_save():
            return False
        self.doc.new()
        self.view.frame()
        self.log("New workflow")
        return True

    def open_template(self, path):
        self._load(path, template=True)

    def open_dialog(self):
        start = str(Path(self.doc.path).parent) if self.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a workflow", start,
                                              "Workflows (*.json *.png);;JSON (*.json);;PNG images (*.png)")
        if path:
            self.open_path(path)

    def open_path(self, path, ask=True):
        if ask and not self.maybe_save():
            return False
        return self._load(path)

    def _load(self, path, template=False):
        path = str(path)
        try:
            document = self.runner.session.open(path)
            ours = document.reader == "latentloom-json"
            problems = self.doc.load(document.data, path=None if (template or not ours) else path, origin=path)
        except (WorkflowError, OSError) as e:
            problems = getattr(e, "problems", None)
            self.log(f"Could not open {path}:", "error")
            for p in problems or [e]:
                self.log(f"  {p}", "error")
            self.status(f"Could not open {Path(path).name}: see the log", 10000)
            self.warn("Could not open", f"{path}\n\n" + "\n".join(map(str, problems or [e])))
            return False
        state = self.doc.workflow.ui.get(EDITOR_UI_KEY)
        if not self.view.set_view_state(state):
            self.view.frame()
        if not template:
            self.settings.add_recent(path)
        self.log(f"Opened {path}" + (" (a template: Save asks where)" if template else ""))
        if problems:
            self.show_problems(problems, "This workflow has problems (fix them before running):")
        self.update_title()
        return True

    def save(self):
        if not self.doc.path:
            return self.save_as()
        return self._write(self.doc.path)

    def save_as(self, path=None):
        if path is None:
            start = self.doc.path or str(Path.cwd() / "workflow.json")
            path, _ = QFileDialog.getSaveFileName(self, "Save workflow as", start, "Workflows (*.json)")
            if not path:
                return False
            if not path.lower().endswith(".json"):
                path += ".json"
        return self._write(path)

    def _write(self, path):
        ui = self.doc.workflow.ui
        ui[EDITOR_UI_KEY] = {**(ui.get(EDITOR_UI_KEY) or {}), **self.view.view_state()}
        try:
            self.doc.save(path)
        except OSError as e:
            self.log(f"Could not save {path}: {e}", "error")
            self.warn("Could not save", f"{path}\n\n{e}")
            return False
        self.settings.add_recent(path)
        self.status(f"Saved {path}")
        return True

    def _fill_recent(self):
        self.recent_menu.clear()
        for path in self.settings.recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        if not self.settings.recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear the list", self.settings.clear_recent)

    def _files_dropped(self, paths):
        wanted = [p for p in paths if p.lower().endswith((".json", ".png"))]
        if wanted:
            self.open_path(wanted[0])
        else:
            self.status("Drop a workflow .json or a PNG that carries a workflow")

    def closeEvent(self, event):
        if not self.maybe_save():
            event.ignore()
            return
        self.settings.set_geometry(self.saveGeometry(), self.saveState())
        self.palette.hide()
        self.runner.shutdown()
        event.accept()

    def edit_settings(self):
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == QDialog.Accepted:
            dialog.store()
            self.apply_settings()

    def apply_settings(self):
        s = self.settings
        self.runner.configure(output_dir=s.output_dir, models_dirs=s.models_dirs, device=s.device)
        self.doc.new_params = {"dtype": s.dtype}
        self.status("Settings saved; they apply from the next run")

    # --- running ---------------------------------------------------------------------

    def show_problems(self, problems, heading):
        self.log(heading, "error")
        by_node = {}
        for p in problems:
            self.log(f"  {p}", "error")
            if p.node in self.doc.workflow.nodes:
                by_node.setdefault(p.node, []).append((f"{p.field}: " if p.field else "") + p.message)
        for nid, messages in by_node.items():
            self.view.set_state(nid, "invalid", "invalid", "\n".join(messages))
        first = problems[0] if problems else None
        if first is not None:
            self.status(str(first), 15000)

    def validate(self):
        problems = self.doc.problems()
        self.view.clear_states()
        if problems:
            self.show_problems(problems, "The workflow has problems:")
            return problems
        self.log("The workflow is valid.", "ok")
        self.status("The workflow is valid")
        return []

    def run(self):
        """Start a run in the background; False when it cannot start."""
        if self.runner.busy:
            self.status("A run is in progress")
            return False
        from app.session import Document
        self.runner.configure(output_dir=self.settings.output_dir, models_dirs=self.settings.models_dirs,
                              device=self.settings.device)
        data = self.doc.to_json()
        base_dir = Path(self.doc.path).resolve().parent if self.doc.path else None
        self.view.clear_states()
        try:
            prepared = self.runner.session.prepare(Document(json.loads(json.dumps(data)), self.doc.path or "",
                                                            base_dir, "editor"))
        except WorkflowError as e:
            self.show_problems(e.problems, "Cannot run: the workflow has problems:")
            self.run_done.emit(None, e)
            return False
        prepared.document = self._with_ui(prepared.document, data)
        self.run_status = "running"
        self.actions["run"].setEnabled(False)
        self.actions["cancel"].setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.run_label.setText(" starting…")
        self.log("Run: starting" + ("" if self.runner.loaded else " (loading the engine)"))
        return self.runner.start(prepared)

    @staticmethod
    def _with_ui(document, data):
        """Outputs embed the editor's layout too, so a PNG opens as it was drawn."""
        for nid, node in data.get("nodes", {}).items():
            if "ui" in node and nid in document["nodes"]:
                document["nodes"][nid]["ui"] = node["ui"]
        if "ui" in data:
            document["ui"] = data["ui"]
        return document

    def cancel_run(self):
        if self.runner.busy:
            self.runner.cancel()
            self.run_label.setText(" cancelling…")
            self.log("Cancelling at the next step…", "warn")

    def _show_output(self, path):
        if path not in self._shown_outputs and Path(path).is_file():
            self._shown_outputs.add(path)
            self.images.add_output(path)

    def _on_event(self, e):
        v = self.view
        if isinstance(e, ev.RunStarted):
            for nid in e.plan:
                v.set_state(nid, "queued")
            self.run_label.setText(f" {len(e.plan)} nodes")
        elif isinstance(e, ev.NodeStarted):
            v.set_state(e.node_id, "running")
            self.run_label.setText(f" {e.node_id}")
        elif isinstance(e, ev.NodeCached):
            v.set_state(e.node_id, "cached")
            self.log(f"  {e.node_id} ({e.type}): cached")
        elif isinstance(e, ev.NodeFinished):
            v.set_state(e.node_id, "done", f"done {e.seconds:.2f}s")
            self.log(f"  {e.node_id} ({e.type}): {e.seconds:.2f}s")
        elif isinstance(e, ev.NodeFailed):
            v.set_state(e.node_id, "failed", "failed", e.message)
            self.log(f"  {e.node_id} ({e.type}) failed: {e.message}", "error")
        elif isinstance(e, ev.NodeProgress):
            self.progress.setRange(0, e.total)
            self.progress.setValue(e.step)
            v.set_state(e.node_id, "running", f"running {e.step}/{e.total}")
            if e.preview is not None:
                self.images.show_preview(e.preview, f"preview: {e.node_id} step {e.step}/{e.total}")
        elif isinstance(e, ev.NodeOutput):
            self.log(f"  {e.node_id}: wrote {e.path}")
            self._show_output(e.path)
        elif isinstance(e, ev.NodeImage) and e.images:
            self.images.show_preview(e.images[0], f"{e.node_id}: preview (not saved)")
        elif isinstance(e, ev.NodeLog):
            self.log(f"  {e.node_id}: {e.message}")
        elif isinstance(e, ev.RunFinished):
            for path in e.outputs:
                self._show_output(path)
            if e.status == "cancelled":
                for nid, node in v.nodes.items():
                    if node.view.state in ("queued", "running"):
                        v.set_state(nid, "cancelled" if node.view.state == "running" else None)

    def _on_finished(self, result, error):
        from app.engine.cancel import Cancelled
        from app.engine.executor import NodeError
        self.actions["run"].setEnabled(True)
        self.actions["cancel"].setEnabled(False)
        self.last_result = result
        if error is None:
            self.run_status = "ok"
            self.progress.setValue(self.progress.maximum())
            msg = (f"Done in {result.seconds:.2f}s: {len(result.executed)} ran, {len(result.cached)} cached, "
                   f"{len(result.outputs)} image{'s' if len(result.outputs) != 1 else ''}")
            self.log(msg, "ok")
            self.status(msg, 10000)
            self.run_label.setText(" done")
        elif isinstance(error, Cancelled):
            self.run_status = "cancelled"
            self.log("Run cancelled", "warn")
            self.status("Run cancelled")
            self.run_label.setText(" cancelled")
        elif isinstance(error, WorkflowError):
            self.run_status = "failed"
            self.show_problems(error.problems, "Cannot run:")
            self.run_label.setText(" failed")
        elif isinstance(error, NodeError):
            self.run_status = "failed"
            self.view.set_state(error.node_id, "failed", "failed", error.message)
            self.log(str(error), "error")
            self.status(str(error), 15000)
            self.run_label.setText(" failed")
        else:
            self.run_status = "failed"
            self.log(f"Run failed: {type(error).__name__}: {error}", "error")
            self.status(f"Run failed: {error}", 15000)
            self.run_label.setText(" failed")
        self.run_done.emit(result, error)

    # --- help ------------------------------------------------------------------------------

    def shortcut_rows(self):
        rows = []
        for act in self.actions.values():
            keys = ", ".join(k.toString(QKeySequence.NativeText) for k in act.shortcuts())
            if keys:
                rows.append((keys, act.text().replace("&", "").rstrip("…")))
        return rows + GESTURES

    def show_shortcuts(self):
        rows = self.shortcut_rows()
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Keys", "Does"])
        for i, (keys, text) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(keys))
            table.setItem(i, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setVisible(False)
        col = QVBoxLayout(dialog)
        col.addWidget(table)
        dialog.resize(620, 560)
        dialog.exec()

    def about(self):
        QMessageBox.about(self, "Latent Loom", "Latent Loom: a node-graph workbench for Stable Diffusion.")

