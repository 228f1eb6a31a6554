"""Runs from the editor: a queue of prepared workflows (and sweeps) over the one session, and
what the window shows while they run. Everything runs through ``app.session``; nothing here
knows how a node executes."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import copy
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QToolButton, QVBoxLayout, QWidget

from latentloom.app.core.workflow import WorkflowError
from latentloom.app.engine import events as ev
from latentloom.app.formats import placeholders


@dataclass
class QueueItem:
    number: int
    label: str
    prepared: object   # app.session.Prepared


def item_label(number, doc):
    name = Path(doc.path or doc.origin or "Untitled").name
    seeds = [str(n.params.get("seed")) for n in doc.workflow.nodes.values() if n.type == "LatentNoise"]
    sweep = doc.workflow.sweep
    extra = f" (seed {', '.join(seeds)})" if seeds else ""
    if sweep:
        extra += " · sweep"
    return f"#{number} {name}{extra}"


def with_ui(document, data):
    """Outputs embed the editor's layout too, so a PNG opens as it was drawn."""
    for nid, node in data.get("nodes", {}).items():
        if "ui" in node and nid in document["nodes"]:
            document["nodes"][nid]["ui"] = node["ui"]
    if "ui" in data:
        document["ui"] = data["ui"]
    return document


class Runs(QObject):
    """The window's run queue: Run while running appends; Cancel stops the current item only."""
    queue_changed = Signal()
    started = Signal(object)           # QueueItem
    finished = Signal(object, object)  # result or None, error or None

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.runner = window.runner
        self.pending = []
        self.current = None
        self.counter = 0
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)

    @property
    def busy(self):
        return self.current is not None

    def prepare(self):
        """The current graph, validated by the session (file checks included): a Prepared, or
        None after marking the problems."""
        from latentloom.app.session import Document
        w = self.w
        s = w.settings
        self.runner.configure(output_dir=s.output_dir, models_dirs=s.models_dirs, device=s.device)
        data = w.doc.to_json()
        base_dir = Path(w.doc.path).resolve().parent if w.doc.path else None
        try:
            prepared = self.runner.session.prepare(
                Document(json.loads(json.dumps(data)), w.doc.path or "", base_dir, "editor"))
        except WorkflowError as e:
            if not self.busy:
                w.view.clear_states()
            w.show_problems(e.problems, "Cannot run: the workflow has problems:")
            if placeholders.unsupported(e.problems):  # nodes that look fine yet cannot run: say so
                w.warn("Cannot run", "\n".join(map(str, e.problems)))
            self.w.run_done.emit(None, e)
            return None
        prepared.document = with_ui(prepared.document, data)
        return prepared

    def submit(self):
        """Run the current graph now, or queue it behind the run in progress. False if invalid."""
        prepared = self.prepare()
        if prepared is None:
            return False
        self.counter += 1
        item = QueueItem(self.counter, item_label(self.counter, self.w.doc), prepared)
        self.w.seeds.after_submit()
        if self.busy:
            self.pending.append(item)
            self.w.log(f"Queued {item.label}")
            self.queue_changed.emit()
        else:
            self._start(item)
        return True

    def _start(self, item):
        w = self.w
        self.current = item
        w.view.clear_states()
        w.run_status = "running"
        w.actions["cancel"].setEnabled(True)
        w.progress.setRange(0, 1)
        w.progress.setValue(0)
        w.run_label.setText(" starting…")
        if item.prepared.is_sweep:
            w.sweep_sheet.begin(item.prepared.axes)
            w.show_sheet()
        w.log(f"Run {item.label}: starting" + ("" if self.runner.loaded else " (loading the engine)"))
        self.runner.start(item.prepared)
        self.queue_changed.emit()
        self.started.emit(item)

    def cancel(self):
        """Stop the item that is running; the queue goes on with the next."""
        if self.runner.busy:
            self.runner.cancel()
            self.w.run_label.setText(" cancelling…")
            self.w.log("Cancelling at the next step…", "warn")

    def remove(self, index):
        if 0 <= index < len(self.pending):
            del self.pending[index]
            self.queue_changed.emit()

    def move(self, index, delta):
        j = index + delta
        if 0 <= index < len(self.pending) and 0 <= j < len(self.pending):
            self.pending[index], self.pending[j] = self.pending[j], self.pending[index]
            self.queue_changed.emit()
            return j
        return index

    def clear(self):
        self.pending.clear()
        self.queue_changed.emit()

    # --- events --------------------------------------------------------------------------
    def _on_event(self, e):
        w, v = self.w, self.w.view
        if isinstance(e, ev.RunStarted):
            for nid in e.plan:
                v.set_state(nid, "queued")
            if not (self.current and self.current.prepared.is_sweep):
                w.run_label.setText(f" {len(e.plan)} nodes")
        elif isinstance(e, ev.NodeStarted):
            v.set_state(e.node_id, "running")
        elif isinstance(e, ev.NodeCached):
            v.set_state(e.node_id, "cached")
            w.log(f"  {e.node_id} ({e.type}): cached")
        elif isinstance(e, ev.NodeFinished):
            v.set_state(e.node_id, "done", f"done {e.seconds:.2f}s")
            w.log(f"  {e.node_id} ({e.type}): {e.seconds:.2f}s")
        elif isinstance(e, ev.NodeFailed):
            v.set_state(e.node_id, "failed", "failed", e.message)
            w.log(f"  {e.node_id} ({e.type}) failed: {e.message}", "error")
        elif isinstance(e, ev.NodeProgress):
            w.progress.setRange(0, e.total)
            w.progress.setValue(e.step)
            v.set_state(e.node_id, "running", f"running {e.step}/{e.total}")
            if e.preview is not None and not (self.current and self.current.prepared.is_sweep):
                w.images.show_preview(e.preview, f"preview: {e.node_id} step {e.step}/{e.total}")
        elif isinstance(e, ev.NodeOutput):
            w.log(f"  {e.node_id}: wrote {e.path}")
            if not (self.current and self.current.prepared.is_sweep):
                w.images.add_output(e.path)
        elif isinstance(e, ev.NodeImage) and e.images:  # PreviewImage: shown, not saved
            w.images.show_preview(e.images[0], f"{e.node_id}: preview (not saved)")
        elif isinstance(e, ev.NodeLog):
            w.log(f"  {e.node_id}: {e.message}")
        elif isinstance(e, ev.RunFinished):
            if e.status == "cancelled":
                for nid, node in v.nodes.items():
                    if node.view.state in ("queued", "running"):
                        v.set_state(nid, "cancelled" if node.view.state == "running" else None)
        elif isinstance(e, ev.CellStarted):
            w.run_label.setText(f" cell {e.index + 1}/{e.total}")
            w.log(f"Cell {e.index + 1}/{e.total}: " + ", ".join(f"{k}={v!r}" for k, v in e.values.items()))
        elif isinstance(e, ev.CellFinished):
            w.sweep_sheet.add_cell(e)
            if e.status == "failed":
                w.log(f"  cell {e.index + 1} failed: {e.error}", "error")
        elif isinstance(e, ev.SheetWritten):
            w.log(f"Contact sheet: {e.path}", "ok")
            w.sweep_sheet.set_sheet_file(e.page, e.path)

    def _on_finished(self, result, error):
        item, self.current = self.current, None
        self.w.actions["cancel"].setEnabled(False)
        self.w.show_finished(item, result, error)
        if result is not None:
            self._remember(item, result)
        self.finished.emit(result, error)
        self.w.run_done.emit(result, error)
        if self.pending and not self.busy:
            self._start(self.pending.pop(0))
        else:
            self.queue_changed.emit()

    def _remember(self, item, result):
        prepared = item.prepared
        if prepared.is_sweep:
            workflow = copy.deepcopy(prepared.document)
            workflow["sweep"] = copy.deepcopy(prepared.workflow.sweep)
            outputs = list(result.sheets) + [f for c in result.cells for f in c.files]
            status, kind = result.status, "sweep"
        else:
            workflow, outputs, status, kind = prepared.document, list(result.outputs), "ok", "run"
        try:
            self.w.history.record(workflow, outputs, result.seconds, status, kind)
        except Exception as e:  # the run's own files are written; a history failure is only logged
            self.w.log(f"Could not add the run to the history: {e}", "warn")


class QueuePanel(QWidget):
    """The pending runs, in order: remove or reorder them."""

    def __init__(self, runs, parent=None):
        super().__init__(parent)
        self.runs = runs
        self.list = QListWidget()
        buttons = QHBoxLayout()
        self.buttons = {}
        for name, text, tip, slot in (
                ("up", "Up", "Run earlier", lambda: self._move(-1)),
                ("down", "Down", "Run later", lambda: self._move(1)),
                ("remove", "Remove", "Drop from the queue", self._remove),
                ("clear", "Clear", "Drop every pending run", runs.clear)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.addWidget(b)
            self.buttons[name] = b
        buttons.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(2, 2, 2, 2)
        col.addWidget(self.list, 1)
        col.addLayout(buttons)
        runs.queue_changed.connect(self.refresh)
        self.refresh()

    def labels(self):
        return [self.list.item(i).text() for i in range(self.list.count())]

    def refresh(self):
        row = self.list.currentRow()
        self.list.clear()
        if self.runs.current is not None:
            self.list.addItem(f"running: {self.runs.current.label}")
            self.list.item(0).setFlags(self.list.item(0).flags() & ~self._selectable())
        self.list.addItems([item.label for item in self.runs.pending])
        if row >= 0:
            self.list.setCurrentRow(min(row, self.list.count() - 1))

    @staticmethod
    def _selectable():
        from PySide6.QtCore import Qt
        return Qt.ItemIsSelectable

    def _pending_row(self):
        offset = 1 if self.runs.current is not None else 0
        return self.list.currentRow() - offset

    def _move(self, delta):
        offset = 1 if self.runs.current is not None else 0
        j = self.runs.move(self._pending_row(), delta)
        self.list.setCurrentRow(j + offset)

    def _remove(self):
        self.runs.remove(self._pending_row())
