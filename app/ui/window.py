"""The main window: it builds the panels and wires them; files, runs, the clipboard and the
menus each live in their own module (files.py, runs.py, clipboard.py, menus.py)."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import html
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDockWidget, QLabel, QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar

from latentloom.app.ui import menus
from latentloom.app.ui.clipboard import Clipboard
from latentloom.app.ui.document import Document
from latentloom.app.ui.files import DEFAULT_WORKFLOW, EDITOR_UI_KEY, Files, ask_unsaved  # noqa: F401
from latentloom.app.ui.graph_view import GraphView
from latentloom.app.ui.history import HistoryPanel
from latentloom.app.ui.image_panel import ImagePanel
from latentloom.app.ui.palette import NodeList, NodePalette
from latentloom.app.ui.properties import PropertiesPanel
from latentloom.app.ui.runner import Runner
from latentloom.app.ui.runs import QueuePanel, Runs
from latentloom.app.ui.seeds import Seeds
from latentloom.app.ui.settings import SettingsDialog
from latentloom.app.ui.sweep_panel import SweepPanel
from latentloom.app.ui.theme import apply_theme

FIRST_SIZE = (1500, 900)   # at most; less on a smaller screen
SCREEN_SHARE = 0.92


class MainWindow(QMainWindow):
    run_done = Signal(object, object)  # result or None, error or None: after the window has shown it

    def __init__(self, settings, catalog=None, file=None, load_default=True):
        super().__init__()
        if catalog is None:
            from latentloom.nodes import catalog
        self.settings, self.catalog = settings, catalog
        apply_theme(settings.theme)
        self.doc = Document(catalog, self)
        self.doc.new_params = {"dtype": settings.dtype}
        self.view = GraphView(self.doc, self, models_dirs=lambda: self.settings.models_dirs)
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
        self.progress.setValue(0)
        self.run_label = QLabel("")
        self.runner = Runner(catalog, settings.output_dir, settings.models_dirs, settings.device, self)
        self.seeds = Seeds(self.doc)
        self.files, self.clipboard = Files(self), Clipboard(self)
        self.runs = Runs(self)
        self.queue = QueuePanel(self.runs)
        self.history = HistoryPanel(settings.output_dir)
        self.sweep = SweepPanel(self.doc)
        self.sweep_sheet = self.images.sheet
        self.last_result = None
        self.run_status = None
        self._waiting_warnings = []
        self._build_docks()
        self.actions = menus.build_actions(self)
        menus.build_menus(self)
        self._wire()
        self._place(settings)
        if file:
            if not self.files.open_path(file, ask=False):
                self.doc.new()
        elif load_default and DEFAULT_WORKFLOW.is_file():
            self.files.open_template(DEFAULT_WORKFLOW, dialog=False)
        else:
            self.doc.new()
        self.update_title()

    # --- construction -----------------------------------------------------------

    def _dock(self, title, widget, area, name):
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks.append(dock)
        return dock

    def _build_docks(self):
        self.docks = []
        self.nodes_dock = self._dock("Nodes", self.node_list, Qt.LeftDockWidgetArea, "nodes")
        self.history_dock = self._dock("History", self.history, Qt.LeftDockWidgetArea, "history")
        self.props_dock = self._dock("Properties", self.properties, Qt.RightDockWidgetArea, "properties")
        self.images_dock = self._dock("Images", self.images, Qt.RightDockWidgetArea, "images")
        self.sweep_dock = self._dock("Sweep", self.sweep, Qt.RightDockWidgetArea, "sweep")
        self.tabifyDockWidget(self.props_dock, self.sweep_dock)
        self.props_dock.raise_()
        self.queue_dock = self._dock("Queue", self.queue, Qt.LeftDockWidgetArea, "queue")
        self.log_dock = self._dock("Log", self.log_view, Qt.BottomDockWidgetArea, "log")
        self.resizeDocks([self.nodes_dock, self.history_dock, self.queue_dock], [300, 260, 120], Qt.Vertical)
        self.resizeDocks([self.nodes_dock], [190], Qt.Horizontal)
        self.resizeDocks([self.props_dock], [340], Qt.Horizontal)
        self.resizeDocks([self.log_dock], [130], Qt.Vertical)
        self.resizeDocks([self.props_dock, self.images_dock], [460, 380], Qt.Vertical)

    def _place(self, settings):
        """First start: fit the screen's available area. Later: the saved geometry and docks."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        avail = screen.availableGeometry() if screen is not None else None
        w, h = FIRST_SIZE
        if avail is not None and avail.width() > 0:
            w = min(w, int(avail.width() * SCREEN_SHARE))
            h = min(h, int(avail.height() * SCREEN_SHARE))
            self.resize(w, h)
            self.move(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2)
        else:
            self.resize(w, h)
        geometry, state = settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def _wire(self):
        d, v = self.doc, self.view
        d.undo_stack.cleanChanged.connect(lambda _: self.update_title())
        d.path_changed.connect(self.update_title)
        d.param_changed.connect(lambda nid, _: self._stale(nid))
        d.input_changed.connect(lambda nid, _: self._stale(nid))
        v.message.connect(lambda m: self.status(m, 10000))
        v.selection_changed.connect(self._selection_changed)
        v.palette_requested.connect(lambda scene, glob: self.show_palette(scene, glob))
        v.node_menu_requested.connect(lambda nid, pos: menus.node_menu(self, pos))
        v.files_dropped.connect(self.files.dropped)
        self.palette.chosen.connect(self.add_node_at)
        self.node_list.chosen.connect(lambda t: self.add_node_at(t, None))
        self.images.message.connect(self.status)
        self.properties.sweep_requested.connect(self.sweep_param)
        self.sweep.message.connect(self.status)
        self.images.use_values.connect(self.use_values)
        self.history.chosen.connect(self.show_history_entry)
        self.history.restore_requested.connect(self.restore_history_entry)

    # --- the public face (tests and scripts use these) -----------------------------

    def run(self):
        """Run the current graph, or queue it behind the run in progress. False when it is invalid."""
        return self.runs.submit()

    def cancel_run(self):
        self.runs.cancel()

    def open_path(self, path, ask=True):
        return self.files.open_path(path, ask)

    def save_as(self, path=None):
        return self.files.save_as(path)

    def new_document(self):
        return self.files.new_document()

    # --- small helpers -------------------------------------------------------------

    def status(self, text, ms=6000):
        self.statusBar().showMessage(text, ms)

    def log(self, text, level="info"):
        color = {"error": "#e05555", "warn": "#d0a040", "ok": "#60b060"}.get(level)
        line = html.escape(text)
        self.log_view.appendHtml(f"<span style='color:{color}'>{line}</span>" if color else line)

    def warn(self, title, text):
        """A modal warning (tests replace this); before the window shows, it waits for it."""
        if not self.isVisible():
            self._waiting_warnings.append((title, text))
            return
        QMessageBox.warning(self, title, text)

    def showEvent(self, event):
        super().showEvent(event)
        waiting, self._waiting_warnings = self._waiting_warnings, []
        for title, text in waiting:
            QTimer.singleShot(0, lambda t=title, x=text: self.warn(t, x))

    def ask_unsaved(self):
        """'save', 'discard' or 'cancel' (tests replace this)."""
        return ask_unsaved(self)

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
                if n == nid or self.view.state(n) != "missing":  # an edit clears its own node's mark
                    self.view.set_state(n, None)

    def _selection_changed(self, ids):
        self.properties.show_node(ids[0] if len(ids) == 1 else None, count=len(ids))

    # --- adding and arranging nodes ------------------------------------------------

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

    def frame_selected(self):
        self.view.frame(self.view.selected_ids() or None)

    def auto_layout(self):
        self.view.auto_layout()
        self.view.frame()

    def group_selected(self):
        ids = self.view.selected_ids()
        if ids:
            return self.view.groups.add(ids)
        self.status("Select the nodes to group first")
        return None

    # --- sweeps ------------------------------------------------------------------------

    def sweep_param(self, nid, name):
        if self.sweep.add_axis(nid, name):
            self.sweep_dock.show()
            self.sweep_dock.raise_()

    def show_sheet(self):
        self.images.show_sheet()
        self.images_dock.raise_()

    def use_values(self, values):
        """Set a sweep cell's values on the graph (one undo step)."""
        from latentloom.app.session.overrides import split_target
        self.doc.undo_stack.beginMacro("Use sweep cell values")
        for target, value in values.items():
            nid, name = split_target(target)
            if nid in self.doc.workflow.nodes:
                self.doc.set_param(nid, name, value)
        self.doc.undo_stack.endMacro()
        self.status("Set " + ", ".join(f"{k} = {v!r}" for k, v in values.items()))

    # --- settings, close ----------------------------------------------------------

    def closeEvent(self, event):
        if not self.files.maybe_save():
            event.ignore()
            return
        self.settings.set_geometry(self.saveGeometry(), self.saveState())
        self.palette.hide()
        self.runs.clear()
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
        self.history.set_output_dir(s.output_dir)
        apply_theme(s.theme)
        self.status("Settings saved; they apply from the next run")

    # --- problems and results -------------------------------------------------------

    def show_problems(self, problems, heading):
        self.log(heading, "error")
        by_node = {}
        for p in problems:
            self.log(f"  {p}", "error")
            if p.node in self.doc.workflow.nodes:
                by_node.setdefault(p.node, []).append((f"{p.field}: " if p.field else "") + p.message)
        for nid, messages in by_node.items():
            self.view.set_state(nid, "invalid", "invalid", "\n".join(messages))
        if problems:
            self.status(str(problems[0]), 15000)

    def validate(self):
        problems = self.doc.problems()
        self.view.clear_states()
        if problems:
            self.show_problems(problems, "The workflow has problems:")
            return problems
        self.log("The workflow is valid.", "ok")
        self.status("The workflow is valid")
        return []

    def show_finished(self, item, result, error):
        """What a finished run (or sweep) leaves on screen."""
        from latentloom.app.core.workflow import WorkflowError
        from latentloom.app.engine.cancel import Cancelled
        from latentloom.app.engine.executor import NodeError
        self.last_result = result
        if error is None:
            self.run_status = "ok" if getattr(result, "status", "ok") == "ok" else result.status
            self.progress.setValue(self.progress.maximum())
            if hasattr(result, "sheets"):
                msg = (f"Sweep {result.status} in {result.seconds:.2f}s: {len(result.cells)} cells, "
                       f"{len(result.sheets)} contact sheet{'s' if len(result.sheets) != 1 else ''}")
            else:
                n = len(result.outputs)
                msg = (f"Done in {result.seconds:.2f}s: {len(result.executed)} ran, {len(result.cached)} cached, "
                       f"{n} image{'s' if n != 1 else ''}")
            self.log(msg, "ok" if self.run_status == "ok" else "warn")
            self.status(msg, 10000)
            self.run_label.setText(" done")
            return
        self.run_status = "cancelled" if isinstance(error, Cancelled) else "failed"
        self.run_label.setText(f" {self.run_status}")
        if isinstance(error, Cancelled):
            self.log("Run cancelled", "warn")
            self.status("Run cancelled")
        elif isinstance(error, WorkflowError):
            self.show_problems(error.problems, "Cannot run:")
        elif isinstance(error, NodeError):
            self.view.set_state(error.node_id, "failed", "failed", error.message)
            self.log(str(error), "error")
            self.status(str(error), 15000)
        else:
            self.log(f"Run failed: {type(error).__name__}: {error}", "error")
            self.status(f"Run failed: {error}", 15000)

    # --- history -----------------------------------------------------------------------

    def show_history_entry(self, entry):
        shown = [p for p in entry.get("outputs") or [] if Path(p).is_file()]
        for path in shown:
            self.images.add_output(path, follow=False)
        if shown:
            self.images.show_path(shown[0])
        else:
            self.status("The images of this run are no longer in the output folder")
        return shown

    def restore_history_entry(self, entry):
        workflow = entry.get("workflow")
        if isinstance(workflow, dict):
            return self.files.open_data(workflow, entry.get("file", "history"))
        return False

    # --- help --------------------------------------------------------------------------

    def shortcut_rows(self):
        return menus.shortcut_rows(self.actions)

    def show_help(self):
        self.help_dialog = menus.HelpDialog(self.shortcut_rows(), self)
        self.help_dialog.show()
        return self.help_dialog

    def about(self):
        QMessageBox.about(self, "Latent Loom", "Latent Loom: a node-graph workbench for Stable Diffusion.")
